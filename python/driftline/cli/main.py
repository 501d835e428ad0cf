"""The ``driftline`` command: ``serve``, ``models list``; user errors print one line and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline import __version__
from driftline.config import load_settings
from driftline.errors import ConfigError, DriftlineError

if TYPE_CHECKING:
    import socket
    from collections.abc import Sequence

    from driftline.config import ServerSettings

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    from driftline.cli.logs import configure_logging
    from driftline.cli.preflight import preflight

    # Flags are checked here so the message names the flag, not the setting it overrides.
    if args.port is not None and not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: must be in 1..65535")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    overrides: dict[str, Any] = {"http": {}}
    if args.repository:
        overrides["repository"] = args.repository
    if args.registry:
        overrides["registry"] = {"source": args.registry}
    if args.allow_unauthenticated:
        overrides["auth"] = {"allow_unauthenticated": True}
    for key in ("host", "port", "workers", "server"):
        if getattr(args, key) is not None:
            overrides["http"][key] = getattr(args, key)
    settings = load_settings(args.config, overrides)
    configure_logging(settings.log_level)
    listener = preflight(settings, demo=args.demo)
    _export(settings, args.config)
    run_server(settings, listener)
    return 0


def _export(settings: ServerSettings, config_file: str | None) -> None:
    """Pass the effective settings to worker processes, which rebuild them from the file and ``DRIFTLINE_*``."""
    if config_file:
        os.environ["DRIFTLINE_CONFIG"] = str(Path(config_file).resolve())
    os.environ["DRIFTLINE_REPOSITORY"] = settings.repository
    os.environ["DRIFTLINE_DATABASE"] = settings.database
    for key, value in msgspec.structs.asdict(settings.http).items():
        os.environ[f"DRIFTLINE_HTTP__{key.upper()}"] = str(value)
    if settings.registry.source:
        os.environ["DRIFTLINE_REGISTRY__SOURCE"] = settings.registry.source


def run_server(settings: ServerSettings, listener: socket.socket) -> None:
    """Run the ASGI server chosen in the settings until it is stopped (SIGINT/SIGTERM drain the queues).

    ``listener`` is the socket `driftline.startup.preflight` bound; uvicorn serves on it (its worker processes too).
    """
    http = settings.http
    target = "driftline.http.app:create_app_from_env"
    if http.server == "granian":
        from granian.constants import Interfaces
        from granian.http import HTTP1Settings
        from granian.server import Server

        # granian has a header deadline and a cap on concurrent requests (more wait, none is refused); it has no
        # keep-alive idle timeout and no connection cap. The body deadline is the app's, so it holds here too.
        # Granian binds its own socket: the preflight bind only proved the port free.
        listener.close()
        Server(
            target,
            address=http.host,
            port=http.port,
            interface=Interfaces.ASGI,
            workers=http.workers,
            factory=True,
            http1_settings=HTTP1Settings(header_read_timeout=int(http.header_timeout_s * 1000)),
            backpressure=max(1, http.max_connections // http.workers),
        ).serve()
        return
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from driftline.cli.logs import log_config
    from driftline.http.connections import LimitedHttpToolsProtocol

    config = uvicorn.Config(
        target,
        factory=True,
        host=http.host,
        port=http.port,
        workers=http.workers,
        loop="uvloop",
        http=LimitedHttpToolsProtocol,  # httptools, plus the header deadline and the connection cap
        timeout_keep_alive=http.keep_alive_s,  # type: ignore[arg-type] # uvicorn types it int; call_later takes float
        access_log=False,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    # The socket bound before loading is served itself, as uvicorn.run serves the one it binds. Handed over as
    # `fd=`, uvicorn would serve a duplicate, and this process's descriptor kept the port listening after the
    # server closed: connections made during shutdown were accepted and then reset instead of refused.
    if http.workers > 1:
        Multiprocess(config, sockets=[listener]).run()
    else:
        server.run(sockets=[listener])
        if not server.started:
            sys.exit(3)  # the application's start-up failed (uvicorn's own code for it; the log says why)


def _models_list(args: argparse.Namespace) -> int:
    from driftline.repository import Repository

    settings = load_settings(args.config, {"repository": args.repository} if args.repository else None)
    repo = Repository(settings.repository)
    names = repo.model_names()
    if not names:
        print(f"no models in {repo.root}")
        return 0
    print(f"{'MODEL':<24} {'BACKEND':<8} {'VERSIONS':<16} {'LOADED':<12} BATCH")
    for name in names:
        try:
            source = repo.model(name)
        except DriftlineError as exc:
            print(f"{name:<24} {'-':<8} {'-':<16} {'-':<12} error: {exc}")
            continue
        versions = ",".join(map(str, source.artifacts))
        loaded = ",".join(map(str, source.versions_to_load()))
        print(f"{name:<24} {source.backend:<8} {versions:<16} {loaded:<12} {source.config.max_batch_size}")
    return 0


def _parse_columns(values: list[str]) -> dict[str, list[str]] | None:
    from driftline.errors import BadRequest

    columns: dict[str, list[str]] = {}
    for value in values:
        name, sep, cols = value.partition("=")
        if not sep or not name or not cols:
            raise BadRequest(f"--columns {value!r} must look like INPUT=col1,col2,...")
        columns[name] = [c.strip() for c in cols.split(",") if c.strip()]
    return columns or None


def _resolve_alias(settings: ServerSettings, name: str, ref: str | None) -> str | None:
    """Aliases live in the server's store: an ``@ALIAS`` (or, with no version, the default alias) is read there."""
    from driftline.errors import ModelNotFound
    from driftline.lifecycle.references import resolve_version
    from driftline.repository import Repository
    from driftline.store.db import Database
    from driftline.store.deployments import DeploymentStore

    if ref is not None and ref.isdigit():
        return ref
    if not Path(settings.database).exists():
        if ref is not None:
            raise ModelNotFound(f"alias {ref!r} of model {name!r}: there is no store at {settings.database}")
        return None
    db = Database(settings.database)
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
    from driftline.jobs import JobSpec, parse_model_ref, run_local

    name, version = parse_model_ref(args.model)
    settings = load_settings(args.config, {"repository": args.repository} if args.repository else None)
    version = _resolve_alias(settings, name, version)
    try:
        spec = JobSpec(
            model=name,
            version=version,
            inputs=list(args.inputs),
            output=args.output,
            repository=settings.repository,
            batch_size=args.batch_size,
            chunk_rows=args.chunk_rows,
            columns=_parse_columns(args.columns),
            passthrough=[c for c in (args.passthrough or "").split(",") if c],
            on_null=args.on_null,
            instances=args.instances,
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
    elif args.quiet:
        summary = run_local(spec, resume=args.resume)
    else:
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

            summary = run_local(spec, resume=args.resume, progress=report)
    print(msgspec.json.encode(summary).decode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="driftline", description="A production inference server.")
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a model repository over the Open Inference Protocol")
    serve.add_argument(
        "repository",
        nargs="?",
        help="model repository directory (default: ./demo-models, built on first run); it must exist",
    )
    serve.add_argument("--demo", action="store_true", help="build the demo models into REPOSITORY if it is missing")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.add_argument("--server", choices=["uvicorn", "granian"], help="ASGI server (default uvicorn)")
    serve.add_argument("--config", help="server TOML file (also $DRIFTLINE_CONFIG)")
    serve.add_argument("--registry", help="sync versions and aliases from a directory, fsspec URL or mlflow+http://...")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="listen on a non-loopback --host with no API key (auth.allow_unauthenticated)",
    )
    serve.set_defaults(func=_serve)

    models = sub.add_parser(
        "models", help="the model repository and the lifecycle: status, aliases, routing, promotion"
    )
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="list models, versions and what the version policy loads")
    listing.add_argument("--repository", help="model repository directory")
    listing.add_argument("--config", help="server TOML file")
    listing.set_defaults(func=_models_list)
    from driftline.cli.admin import add_keys_parser, add_lifecycle_commands

    add_lifecycle_commands(models_sub)
    add_keys_parser(sub)

    from driftline.cli.drift import add_drift_parser, run_drift

    add_drift_parser(sub).set_defaults(func=run_drift)

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
    score.add_argument("--quiet", action="store_true", help="no progress bar; only the JSON summary")
    score.set_defaults(func=_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftline`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except DriftlineError as exc:
        print(f"driftline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
