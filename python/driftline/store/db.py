"""The SQLite store: one file, schema migrations applied in order at open, one connection per process."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["Database"]

# Append-only: each entry upgrades the schema by one version. Never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT NOT NULL,
        version_before TEXT,
        version_after TEXT,
        sha256 TEXT,
        reason TEXT
    );
    CREATE INDEX audit_log_model ON audit_log(model, id);
    """,
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        spec TEXT NOT NULL,
        rows_done INTEGER NOT NULL DEFAULT 0,
        rows_total INTEGER,
        rows_per_s REAL,
        error TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX jobs_state ON jobs(state);
    """,
)


class Database:
    """A SQLite file opened in WAL mode; every write goes through one lock so threads can share it."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) and migrate the database at ``path`` (``:memory:`` works too)."""
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()

    def _migrate(self) -> None:
        current = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            self._conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """Run one write statement; returns the last row id."""
        with self._lock:
            return self._conn.execute(sql, params).lastrowid or 0

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Run one read statement and return every row."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
