"""``driftline capture export MODEL``: a running server's captured rows of a model, as Parquet or JSON lines.

A client of ``GET /v1/models/{name}/captures`` (see client.py for ``--url`` and ``--key``); the rows are streamed
to ``--output`` (or stdout), never held in memory whole.
"""

from __future__ import annotations

import contextlib
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.cli.client import add_client_options, download
from driftline.errors import DriftlineError

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """``driftline capture ...``, under ``sub`` (the main parser's subparsers)."""
    capture = sub.add_parser("capture", help="captured predictions of a running server: export")
    capture_sub = capture.add_subparsers(dest="capture_command", required=True)
    export = add_client_options(
        capture_sub.add_parser("export", help="a model's captured rows as Parquet or JSON lines")
    )
    export.add_argument("name", metavar="MODEL")
    export.add_argument("--since", help="rows at or after this ISO 8601 time with a timezone (e.g. 2026-01-31T00:00Z)")
    export.add_argument("--until", help="rows before this ISO 8601 time with a timezone")
    export.add_argument("--version", type=int, help="one version's rows (default: every version's)")
    export.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    export.add_argument("--output", help="write to FILE (default: stdout; Parquet needs a file)")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    if args.output is None and args.format == "parquet" and sys.stdout.isatty():
        raise DriftlineError("--format parquet writes binary: give --output FILE (or redirect stdout)")
    query = {k: v for k, v in (("since", args.since), ("until", args.until), ("format", args.format)) if v}
    if args.version is not None:
        query["version"] = str(args.version)
    path = f"/v1/models/{urllib.parse.quote(args.name, safe='')}/captures?{urllib.parse.urlencode(query)}"
    if args.output is None:
        download(args, path, sys.stdout.buffer)
        return 0
    target = Path(args.output)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as sink:
            written = download(args, path, sink)
        partial.replace(target)  # a refused or broken export leaves no half file under the name asked for
    except OSError as exc:
        raise DriftlineError(f"cannot write --output {args.output}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    print(f"wrote {written} bytes to {target}", file=sys.stderr)
    return 0
