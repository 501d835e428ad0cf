"""What ``driftline serve`` checks before it loads anything, so a bad state is refused with one line (exit 2).

Every check here runs once, in the process the user started, before a model loads or a worker process starts:
a typo, a busy port or a damaged store must not surface as a traceback after minutes of loading.
"""

from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.errors import ConfigError
from driftline.security.exposure import check_exposure

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftline.config import ServerSettings

__all__ = ["bind_listener", "check_database", "check_registry", "preflight", "prepare_repository"]

_log = logging.getLogger("driftline.cli.preflight")


def check_registry(settings: ServerSettings) -> None:
    """Open the registry source once: an unknown or uninstalled scheme is a ConfigError; nothing is contacted."""
    if settings.registry.source:
        from driftline.registry import open_source

        open_source(settings.registry.source)


def check_database(path: str) -> bool:
    """Open, migrate and integrity-check the store.

    Returns:
        Whether it holds any live API key (keys there count like keys in the config file).

    Raises:
        ConfigError: the file cannot be opened or written, is no SQLite database, or fails ``PRAGMA integrity_check``.
    """
    from driftline.store.db import open_database
    from driftline.store.keys import KeyStore

    db = open_database(path)
    try:
        db.check_integrity()
        return any(k.revoked_at is None for k in KeyStore(db).api_keys())
    finally:
        db.close()


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind the server's socket now, before loading, so a busy port or a bad address fails first.

    Not listening yet: connections are refused (not queued) until the server is ready to answer them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ConfigError(f"cannot listen on {host}:{port} (--host/--port): {why}") from None
    sock.set_inheritable(True)
    return sock


def prepare_repository(settings: ServerSettings, *, demo: bool) -> Callable[[], None] | None:
    """The one place that decides what happens to a repository that does not exist (nothing is written yet).

    The demo models are built only into the default repository (``create_demo``) or with ``--demo``; a missing
    repository the user named is refused (a typo must never serve iris), unless a registry source will fill it.

    Returns:
        What to do once every other check passed (build the demo, create the folder), or None.
    """
    from driftline.config import ServerSettings

    root = Path(settings.repository)
    if root.exists():
        if not root.is_dir():
            raise ConfigError(f"repository {root} is not a directory")
        return None
    is_default = root.resolve() == Path(ServerSettings().repository).resolve()
    if demo or (settings.create_demo and is_default):

        def build() -> None:
            from driftline.repository.demo import build_demo_repository

            build_demo_repository(root)

        return build
    source = settings.registry.source
    if source:

        def create() -> None:
            root.mkdir(parents=True)
            _log.info("repository %s did not exist: created it for the sync from %s", root, source)

        return create
    hint = "create_demo = false" if is_default else "check the path, or pass --demo to build the demo models there"
    raise ConfigError(f"repository {root} does not exist ({hint})")


def preflight(settings: ServerSettings, *, demo: bool) -> socket.socket:
    """Every start-up check, those that write nothing first; the demo is built (or the folder made) last.

    Returns:
        The bound (not yet listening) socket to hand to the server.
    """
    check_registry(settings)
    make_repository = prepare_repository(settings, demo=demo)
    has_keys = check_database(settings.database) or bool(settings.auth.keys)
    check_exposure(settings.http.host, has_keys=has_keys, allow=settings.auth.allow_unauthenticated)
    sock = bind_listener(settings.http.host, settings.http.port)
    if make_repository is not None:
        try:
            make_repository()
        except BaseException:
            sock.close()
            raise
    return sock
