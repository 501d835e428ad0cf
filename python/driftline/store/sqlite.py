"""The SQLite store: one file, schema migrations applied in order at open, one connection per process."""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.errors import ConfigError
from driftline.store.base import Database
from driftline.store.migrations import MIGRATIONS

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from driftline.store.base import Connection, Row

__all__ = ["SqliteDatabase"]


class SqliteDatabase(Database):
    """A SQLite file opened in WAL mode; every write goes through one lock so threads can share it."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) and migrate the database at ``path`` (``:memory:`` works too).

        Raises:
            ConfigError: naming the file, when it cannot be created, opened or written, or is no SQLite database.
        """
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._open()
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(AttributeError, sqlite3.Error):
                self._conn.close()
            raise ConfigError(f"database {self.path}: {_reason(exc)}") from None

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        # Worker processes open the same file at the same moment. Switching to WAL and migrating need the file to
        # themselves (SQLite answers "database is locked" at once for the first, and executescript commits before
        # it runs, so no SQLite lock spans a migration): one process at a time does both, under a file lock.
        with self._lock, contextlib.ExitStack() as stack:
            if self.path != ":memory:":
                handle = stack.enter_context(Path(f"{self.path}.migrate.lock").open("a"))
                fcntl.flock(handle, fcntl.LOCK_EX)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()

    def check_integrity(self) -> None:
        """Run ``PRAGMA integrity_check`` (the whole file is read: done once at server start, not per worker).

        Raises:
            ConfigError: the file is damaged; the message holds SQLite's first findings.
        """
        try:
            with self._lock:
                rows = [row[0] for row in self._conn.execute("PRAGMA integrity_check(5)").fetchall()]
                if rows == ["ok"]:
                    # SQLite opens a file it may not write read-only, without a word: write its header once
                    # (the same schema version) so that shows now rather than at the first alias change.
                    version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                    self._conn.execute(f"PRAGMA user_version = {int(version)}")
        except sqlite3.Error as exc:
            raise ConfigError(f"database {self.path}: {_reason(exc)}") from None
        if rows != ["ok"]:
            findings = "; ".join(line for row in rows for line in str(row).splitlines())
            raise ConfigError(f"database {self.path} fails its integrity check ({findings}): restore it from a backup")

    def _migrate(self) -> None:
        current = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            self._conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one write statement; returns the last row id."""
        with self._lock:
            return self._conn.execute(sql, tuple(params)).lastrowid or 0

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one read statement and return every row."""
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Several statements as one atomic write: all land or none (rolled back on any exception)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def schema_version(self) -> int:
        """SQLite's user_version, which each migration sets."""
        return int(self.query("PRAGMA user_version")[0][0])

    def data_version(self) -> int:
        """SQLite's counter that changes when another connection (another worker process) commits."""
        with self._lock:
            value: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
            return value

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileExistsError):  # a component of the path is a file, not a folder
        return f"cannot create the folder {exc.filename}: a file is in the way"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc.strerror or exc)
    return str(exc)
