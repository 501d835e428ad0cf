"""Which worker process talks to the registry source: the one holding an exclusive lock on a file in the cache.

The lock is ``flock`` on ``<cache>/.sync.lock``: the kernel lets it go when its holder exits, however it exits, so a
crashed leader never blocks the others; the next process to try takes over.
"""

from __future__ import annotations

import fcntl
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LeaderLock"]


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
