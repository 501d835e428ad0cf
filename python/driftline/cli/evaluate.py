"""``driftline evaluate``: score a labeled Parquet/CSV file with a model version and store its quality report with
the version (the server's store), so that the version's status, and a proposal to promote it, show it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.config import load_settings

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

__all__ = ["add_parser"]

#: Rows read unless told otherwise: the scored rows are held in memory (a few outputs per row), and each
#: bootstrap resample of the intervals visits every row once.
DEFAULT_MAX_ROWS = 2_000_000


def _evaluate(args: argparse.Namespace) -> int:
    from driftline.cli.keys import local_actor
    from driftline.cli.score import parse_columns, resolve_alias
    from driftline.errors import BadRequest
    from driftline.jobs import parse_model_ref
    from driftline.jobs.evaluate import evaluate
    from driftline.store.db import open_database
    from driftline.store.evaluations import EvaluationStore

    name, ref = parse_model_ref(args.model)
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise BadRequest(f"--out {args.out}: no folder {Path(args.out).resolve().parent}")  # before anything is stored
    settings = load_settings(args.config, {"repository": args.repository} if args.repository else None)
    version = resolve_alias(settings, name, ref)
    columns = parse_columns(args.columns)
    with _progress(f"evaluating {args.model}") as progress:
        new = evaluate(
            settings.repository,
            name,
            version,
            args.data,
            args.target,
            columns=columns,
            max_rows=args.max_rows,
            batch_size=args.batch_size,
            progress=progress,
        )
    db = open_database(settings.database)
    try:
        stored = EvaluationStore(db).add(new, local_actor())
    finally:
        db.close()
    result = {**msgspec.to_builtins(stored), "database": str(Path(db.path).resolve())}
    text = msgspec.json.encode(result)
    if args.out:
        _write(Path(args.out), text)
    if args.json:
        print(text.decode())
    else:
        _table(result)
    return 0


def _write(path: Path, text: bytes) -> None:
    """Whole or not at all: a reader never sees half a report."""
    from driftline.errors import BadRequest

    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        part.write_bytes(text)
        part.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise BadRequest(f"--out {path}: cannot write it: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A bar on stderr at a terminal (erased at the end); nothing when stderr is a file or a pipe."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if not console.is_interactive:
        yield None
        return
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _interval(e: dict[str, Any]) -> str:
    shown = [f"{v:.4f}" if v is not None else "-" for v in (e["value"], e["lower"], e["upper"])]
    return f"{shown[0]:<10} [{shown[1]}, {shown[2]}]"


def _table(result: dict[str, Any]) -> None:
    """The report for a person: what was evaluated, each metric with its interval, per class for a classifier."""
    report = result["report"]
    sha = result["sha256"][:12]
    print(f"model {result['model']} version {result['version']} (sha256 {sha}) on {result['dataset']}")
    print(f"{result['rows']:,} rows, target {result['target']!r}")
    level = f"{report['confidence']:.0%}"
    print(f"{'METRIC':<16} {'VALUE':<10} {level} INTERVAL")
    names = ("mae", "rmse", "mape", "r2") if result["task"] == "regression" else _CLASSIFICATION
    for metric in names:
        if report.get(metric) is not None:
            print(f"{metric:<16} {_interval(report[metric])}")
    if result["task"] == "classification":
        print(f"{'CLASS':<16} {'SUPPORT':>8} {'PRECISION':>10} {'RECALL':>10} {'F1':>10}")
        for c in report["classes"]:
            cells = [f"{v:.4f}" if (v := c[k]["value"]) is not None else "-" for k in ("precision", "recall", "f1")]
            print(f"{c['label']!s:<16} {c['support']:>8,} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10}")
    print(f"stored as evaluation {result['id']} in {result['database']}")


_CLASSIFICATION = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss", "roc_auc")


def add_parser(sub: Any) -> None:
    """``driftline evaluate``, under ``sub`` (the main parser's subparsers)."""
    p = sub.add_parser("evaluate", help="score a labeled file and store its quality report with the version")
    p.add_argument("model", help="MODEL, MODEL:VERSION or MODEL@ALIAS (no version: the default alias, as served)")
    p.add_argument("data", help="a labeled Parquet or CSV file")
    p.add_argument("--target", required=True, help="the column holding the true label or value")
    p.add_argument("--repository", help="model repository directory")
    p.add_argument("--config", help="server TOML file (its database is where the evaluation is stored)")
    p.add_argument("--columns", action="append", default=[], help="INPUT=col1,col2,... (repeatable)")
    p.add_argument("--batch-size", type=int, default=1024, help="rows per model call (default 1024)")
    p.add_argument(
        "--max-rows", type=int, default=DEFAULT_MAX_ROWS, help=f"refuse a larger file (default {DEFAULT_MAX_ROWS:,})"
    )
    p.add_argument("--json", action="store_true", help="the whole result as JSON instead of a table")
    p.add_argument("--out", metavar="REPORT.json", help="also write the JSON result to this file")
    p.set_defaults(func=_evaluate)
