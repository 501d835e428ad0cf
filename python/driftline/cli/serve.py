"""``driftline serve``: check the settings and the environment, then run the ASGI server until it is stopped."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.config import load_settings
from driftline.errors import ConfigError

if TYPE_CHECKING:
    import argparse
    import socket

    from driftline.config import ServerSettings

__all__ = ["add_parser", "run_server"]


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
    if args.log_format is not None:
        overrides["logs"] = {"format": args.log_format}
    for key in ("host", "port", "workers", "server"):
        if getattr(args, key) is not None:
            overrides["http"][key] = getattr(args, key)
    settings = load_settings(args.config, overrides)
    configure_logging(settings.log_level, settings.logs.format)
    listener = preflight(settings, demo=args.demo)
    # Several workers sum their metrics through a fresh directory of this server's own (server/worker_metrics.py),
    # removed when it stops; one worker needs none.
    metrics_dir = _metrics_dir() if settings.http.workers > 1 else ""
    settings = msgspec.structs.replace(settings, http=msgspec.structs.replace(settings.http, metrics_dir=metrics_dir))
    try:
        _export(settings, args.config)
        run_server(settings, listener)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _export(settings: ServerSettings, config_file: str | None) -> None:
    """Pass the effective settings to worker processes, which rebuild them from the file and ``DRIFTLINE_*``."""
    if config_file:
        os.environ["DRIFTLINE_CONFIG"] = str(Path(config_file).resolve())
    os.environ["DRIFTLINE_REPOSITORY"] = settings.repository
    os.environ["DRIFTLINE_DATABASE"] = settings.database
    for key, value in msgspec.structs.asdict(settings.http).items():
        os.environ[f"DRIFTLINE_HTTP__{key.upper()}"] = str(value)
    os.environ["DRIFTLINE_LOGS__FORMAT"] = settings.logs.format  # --log-format, for the workers' own log lines
    if settings.registry.source:
        os.environ["DRIFTLINE_REGISTRY__SOURCE"] = settings.registry.source


def run_server(settings: ServerSettings, listener: socket.socket) -> None:
    """Run the ASGI server chosen in the settings until it is stopped (SIGINT/SIGTERM: after
    ``http.drain_delay_s`` of readiness 503, stop accepting, answer every request in flight, drain the queues).

    ``listener`` is the socket `preflight.bind_listener` bound; uvicorn serves on it (its worker processes too).
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

    from driftline.cli.logs import log_config
    from driftline.http.connections import LimitedHttpToolsProtocol
    from driftline.http.supervisor import Server, Supervisor

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
        log_config=log_config(settings.log_level, settings.logs.format),
        timeout_graceful_shutdown=30,
        # uvicorn kills a worker that does not answer its supervisor's ping within this time. Its 5 s default
        # killed workers still loading models on a busy machine (load 11 on 2 cores), over and over.
        timeout_worker_healthcheck=60,
    )
    server = Server(config)
    # The socket bound before loading is served itself, as uvicorn.run serves the one it binds. Handed over as
    # `fd=`, uvicorn would serve a duplicate, and this process's descriptor kept the port listening after the
    # server closed: connections made during shutdown were accepted and then reset instead of refused.
    if http.workers > 1:
        Supervisor(config, sockets=[listener]).run()
    else:
        server.run(sockets=[listener])
        if not server.started:
            sys.exit(3)  # the application's start-up failed (uvicorn's own code for it; the log says why)


def add_parser(sub: Any) -> None:
    """``driftline serve``, under ``sub`` (the main parser's subparsers)."""
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
    serve.add_argument("--log-format", choices=["text", "json"], help="log lines as text or JSON (logs.format)")
    serve.add_argument("--registry", help="sync versions and aliases from a directory, fsspec URL or mlflow+http://...")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="listen on a non-loopback --host with no API key (auth.allow_unauthenticated)",
    )
    serve.set_defaults(func=_serve)


# A unix socket's path must fit in sun_path (108 bytes on Linux, 104 on macOS, with its NUL): the workers' sockets
# are <dir>/worker-<N>.sock, so a long $TMPDIR (macOS's /var/folders/..., a test's tmp_path) falls back to /tmp.
_SOCKET_PATH_MAX = 100


def _metrics_dir() -> str:
    made = tempfile.mkdtemp(prefix="driftline-metrics-")
    if len(str(Path(made) / "worker-9999.sock")) <= _SOCKET_PATH_MAX:
        return made
    Path(made).rmdir()
    return tempfile.mkdtemp(prefix="driftline-metrics-", dir="/tmp")
