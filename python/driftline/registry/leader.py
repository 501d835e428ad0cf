"""Which process talks to the registry source: the one holding the sync's lock; the others follow.

On one host (the SQLite store) the lock is ``flock`` on ``<cache>/.sync.lock``: the kernel lets it go when its
holder exits, however it exits, so a crashed leader never blocks the others; the next process to try takes over.
With a PostgreSQL store, replicas on several hosts share the database, so the lock is a PostgreSQL advisory lock
named after the source (:mod:`driftline.store.postgres_lock`), let go by the server when its holder's connection
ends. Either way a follower tries again before each poll, so a leader's death is taken over within one
``poll_interval_s``.
"""

from __future__ import annotations

import fcntl
from typing import TYPE_CHECKING, Protocol, TextIO

from driftline.store.db import is_postgres_url

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LeaderLock", "SyncLock", "sync_lock"]


class SyncLock(Protocol):
    """What the sync asks of its lock."""

    @property
    def held(self) -> bool: ...
    def acquire(self) -> bool: ...
    def release(self) -> None: ...


def sync_lock(database: str, cache_root: Path, source: str) -> SyncLock:
    """The lock that elects the leader of the sync from ``source``: an advisory lock in a PostgreSQL store (every
    replica of every host shares it), else a file lock in the cache (every worker of this host)."""
    if is_postgres_url(database):
        from driftline.store.postgres_lock import AdvisoryLock  # psycopg only when configured

        return AdvisoryLock(database, f"registry-sync:{source}")
    return LeaderLock(cache_root)


class LeaderLock:
    """A non-blocking, process-wide lock file; one process per cache directory holds it at a time."""

    def __init__(self, cache_root: Path) -> None:
        """Lock ``cache_root/.sync.lock`` (the folder is created on the first try)."""
        self.path = cache_root / ".sync.lock"
        self._handle: TextIO | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._handle is not None

    def acquire(self) -> bool:
        """Take the lock unless another process holds it; True when this process holds it now."""
        if self._handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Let the lock go (closing the file releases it), so another process can lead."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
