"""A PostgreSQL session advisory lock: held by one connection of all the replicas sharing the database.

The server lets it go when the holder's connection ends, however it ends (a clean exit, kill -9, a lost host once
TCP keepalives give up), so a dead holder never blocks the others: the next process to try takes over.
"""

from __future__ import annotations

from typing import Any

import psycopg

from driftline.store.postgres import advisory_key, connect

__all__ = ["AdvisoryLock"]


class AdvisoryLock:
    """A non-blocking lock named ``name`` in the database at ``url``, on a connection of its own."""

    def __init__(self, url: str, name: str) -> None:
        """Lock ``name`` (nothing connects until the first :meth:`acquire`)."""
        self.url = url
        self.name = name
        self.key = advisory_key(f"lock:{name}")
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def held(self) -> bool:
        """Whether this process held the lock at its last :meth:`acquire`."""
        return self._conn is not None

    def acquire(self) -> bool:
        """Take the lock unless another process holds it; True when this process holds it now.

        Asked again while held, it checks the connection still stands: a lost connection lost the lock too (the
        server let it go), so it is taken again only if no other process took it meanwhile.
        """
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error:
                self.release()
            else:
                return True
        try:
            conn = connect(self.url)
        except psycopg.Error:
            return False
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error:
            conn.close()
            return False
        if not (row and row[0]):
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        """Let the lock go (closing its connection releases it), so another process can lead."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
