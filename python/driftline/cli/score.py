"""``driftline score``: score Parquet/CSV files in bulk with a model of the repository (resumable)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.config import load_settings
from driftline.errors import DriftlineError
from driftline.repository.names import is_version

if TYPE_CHECKING:
    import argparse

    from driftline.config import ServerSettings
    from driftline.jobs import JobSpec, JobSummary

__all__ = ["add_parser"]


def parse_columns(values: list[str]) -> dict[str, list[str]] | None:
    from driftline.errors import BadRequest

    columns: dict[str, list[str]] = {}
    for value in values:
        name, sep, cols = value.partition("=")
        if not sep or not name or not cols:
            raise BadRequest(f"--columns {value!r} must look like INPUT=col1,col2,...")
        columns[name] = [c.strip() for c in cols.split(",") if c.strip()]
    return columns or None


def resolve_alias(settings: ServerSettings, name: str, ref: str | None) -> str | None:
    """Aliases live in the server's store: an ``@ALIAS`` (or, with no version, the default alias) is read there."""
    from driftline.errors import ModelNotFound
    from driftline.lifecycle.references import resolve_version
    from driftline.repository import Repository
    from driftline.store.db import is_postgres_url, open_database
    from driftline.store.deployments import DeploymentStore

    if ref is not None and is_version(ref):
        return ref
    if not is_postgres_url(settings.database) and not Path(settings.database).exists():
        if ref is not None:
            raise ModelNotFound(f"alias {ref!r} of model {name!r}: there is no store at {settings.database}")
        return None
    db = open_database(settings.database)
    try:
        aliases = {row.alias: row.version for row in DeploymentStore(db).aliases(name)}
    finally:
        db.close()
    default = settings.default_alias
    with contextlib.suppress(DriftlineError):
        default = Repository(settings.repository).model(name).config.default_alias or default
    return resolve_version(aliases, name, ref, default)


def _score(args: argparse.Namespace) -> int:
    from driftline.errors import BadRequest
    from driftline.jobs import JobSpec, parse_model_ref

    name, version = parse_model_ref(args.model)
    settings = load_settings(args.config, {"repository": args.repository} if args.repository else None)
    version = resolve_alias(settings, name, version)
    try:
        spec = JobSpec(
            model=name,
            version=version,
            inputs=list(args.inputs),
            output=args.output,
            repository=settings.repository,
            batch_size=args.batch_size,
            chunk_rows=args.chunk_rows,
            columns=parse_columns(args.columns),
            passthrough=[c for c in (args.passthrough or "").split(",") if c],
            on_null=args.on_null,
            instances=args.instances,
            capture=args.capture,
            entity_column=args.entity_column,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if args.engine == "ray":
        from driftline.jobs.ray import run_ray

        if args.resume:
            raise BadRequest("--resume applies to the local engine; a ray job's output appears whole or not at all")
        # Ray prints its own notices (a worker that died and was retried, say) on stdout; stdout carries only
        # the summary line, so anything printed while Ray runs goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            summary = run_ray(spec, address=args.ray_address)
    else:
        with contextlib.ExitStack() as stack:
            summary = _local(args, spec, settings, stack)
    print(msgspec.json.encode(summary).decode())
    return 0


def _local(
    args: argparse.Namespace, spec: JobSpec, settings: ServerSettings, stack: contextlib.ExitStack
) -> JobSummary:
    """Run the job on this machine, with a progress bar at a terminal unless ``--quiet``."""
    from driftline.jobs import run_local

    capture = None
    if spec.capture:
        from driftline.jobs.capture import CaptureTarget
        from driftline.store.captures import CaptureIndex
        from driftline.store.db import open_database

        # The segments are listed in the server's store, so a server on the same store and directory reads them.
        db = open_database(settings.database)
        stack.callback(db.close)
        capture = CaptureTarget(settings.capture, CaptureIndex(db))
    if args.quiet:
        return run_local(spec, resume=args.resume, capture=capture)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    # The total is known only once the inputs are read, so the bar starts with total=None (rich's pulsing
    # bar) and shows the total from a field rather than formatting task.total, which would be None.
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.fields[of]} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    # stdout carries only the summary line. At a terminal the bar is drawn on stderr and erased at the end;
    # when stderr is a file or pipe (or a dumb terminal) it is off: logs get no escape codes or blank lines.
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, disable=not console.is_interactive) as bar:
        task = bar.add_task(f"scoring {args.model}", total=None, rate="", of="?")
        # The rate counts rows scored by this run: a resumed job's first report also holds the rows an
        # earlier run wrote, so its rate is measured from that report on.
        base: list[tuple[int, float]] = [] if args.resume else [(0, time.perf_counter())]

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if not base:
                base.append((done, now))
            rows, since = base[0]
            rate = f"{(done - rows) / (now - since):,.0f} rows/s" if done > rows and now > since else ""
            bar.update(task, completed=done, total=total, rate=rate, of=f"{total:,}")

        return run_local(spec, resume=args.resume, progress=report, capture=capture)


def add_parser(sub: Any) -> None:
    """``driftline score``, under ``sub`` (the main parser's subparsers)."""
    score = sub.add_parser("score", help="score Parquet/CSV files in bulk (resumable)")
    score.add_argument("model", help="MODEL, MODEL:VERSION or MODEL@ALIAS (no version: the default alias, as served)")
    score.add_argument("inputs", nargs="+", help="Parquet/CSV files, directories or globs")
    score.add_argument("--output", required=True, help="output directory (Parquet parts + _manifest.json)")
    score.add_argument("--repository", help="model repository directory")
    score.add_argument("--config", help="server TOML file")
    score.add_argument("--batch-size", type=int, default=1024, help="rows per model call (default 1024)")
    score.add_argument("--chunk-rows", type=int, default=65_536, help="rows per read chunk and output part")
    score.add_argument("--columns", action="append", default=[], help="INPUT=col1,col2,... (repeatable)")
    score.add_argument("--passthrough", help="comma-separated columns copied to the output (ids)")
    score.add_argument("--on-null", choices=["reject", "file", "fail"], default="reject", help="rows with nulls")
    score.add_argument("--instances", type=int, default=1, help="model instances scoring in parallel")
    score.add_argument("--engine", choices=["local", "ray"], default="local", help="where to run (default local)")
    score.add_argument("--ray-address", help="Ray cluster address for --engine ray (default: a local Ray instance)")
    score.add_argument("--resume", action="store_true", help="finish a job that was interrupted")
    score.add_argument(
        "--capture", action="store_true", help="capture the scored rows (arm bulk), as the server captures requests"
    )
    score.add_argument("--entity-column", help="with --capture: the column of entity keys (feedback by entity)")
    score.add_argument("--quiet", action="store_true", help="no progress bar; only the JSON summary")
    score.set_defaults(func=_score)
