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

if TYPE_CHECKING:
    from collections.abc import Iterator

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
    """
    CREATE TABLE aliases (
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        previous INTEGER,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (model, alias)
    );
    CREATE TABLE routing (
        model TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE TABLE pins (
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (model, version)
    );
    CREATE TABLE proposals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        rule TEXT,
        proposed_by TEXT NOT NULL,
        decided_by TEXT,
        reason TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX proposals_model ON proposals(model, id);
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        revoked_at TEXT
    );
    CREATE TABLE registry_aliases (
        source TEXT NOT NULL,
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (source, model, alias)
    );
    CREATE INDEX audit_log_action ON audit_log(action, id);
    CREATE TABLE shadow_stats (
        process TEXT NOT NULL,
        model TEXT NOT NULL,
        primary_version INTEGER NOT NULL,
        shadow_version INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        compared_rows INTEGER NOT NULL,
        agreeing_rows INTEGER NOT NULL,
        abs_diff_sum REAL NOT NULL,
        abs_diff_count INTEGER NOT NULL,
        primary_latency_s REAL NOT NULL,
        shadow_latency_s REAL NOT NULL,
        shadow_errors INTEGER NOT NULL,
        dropped INTEGER NOT NULL,
        last_error TEXT,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (process, model, primary_version, shadow_version)
    );
    """,
    # The index of captured-row segments (store/captures.py): paths relative to the capture root, times in µs UTC.
    """
    CREATE TABLE capture_segments (
        path TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        day TEXT NOT NULL,
        rows INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        first_ts INTEGER NOT NULL,
        last_ts INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX capture_segments_model ON capture_segments(model, version, first_ts);
    CREATE INDEX capture_segments_age ON capture_segments(last_ts);
    """,
    # Ground-truth labels (store/feedback.py): one per request row or per entity, the target as JSON text.
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        request_id TEXT,
        row INTEGER,
        entity TEXT,
        target TEXT NOT NULL,
        received_at TEXT NOT NULL,
        CHECK ((request_id IS NULL) = (row IS NULL)),
        CHECK ((request_id IS NULL) != (entity IS NULL))
    );
    CREATE UNIQUE INDEX feedback_request ON feedback(model, request_id, row);
    CREATE UNIQUE INDEX feedback_entity ON feedback(model, entity);
    CREATE INDEX feedback_received ON feedback(model, received_at);
    CREATE INDEX feedback_erase ON feedback(entity);
    """,
    # Offline evaluations of a version (store/evaluations.py): the quality report as JSON, its headline metrics,
    # and for a binary classifier the (label, positive-class score) pairs as a Parquet blob (the CBPE reference).
    """
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        dataset TEXT NOT NULL,
        dataset_sha256 TEXT NOT NULL,
        rows INTEGER NOT NULL,
        target TEXT NOT NULL,
        task TEXT NOT NULL,
        report TEXT NOT NULL,
        metrics TEXT NOT NULL,
        reference BLOB,
        reference_rows INTEGER NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX evaluations_version ON evaluations(model, version, id);
    """,
    # Business KPI events (store/kpis.py): attributed to a version at read time, from the captured request that
    # ``request_id`` or ``entity`` names. ``at_us``: when the event happened (µs UTC); ``event_id``: the client's
    # idempotency key (NULLs are distinct, so events without one never collide).
    """
    CREATE TABLE kpi_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        request_id TEXT,
        entity TEXT,
        at_us INTEGER NOT NULL,
        event_id TEXT,
        received_at TEXT NOT NULL,
        CHECK ((request_id IS NULL) != (entity IS NULL))
    );
    CREATE UNIQUE INDEX kpi_events_event ON kpi_events(model, event_id);
    CREATE INDEX kpi_events_model ON kpi_events(model, id);
    CREATE INDEX kpi_events_erase ON kpi_events(entity);
    """,
    # Request, error and latency counts per process, version, routed or not, and minute (store/traffic.py): latency
    # is a JSON object of the non-zero buckets of LATENCY_BOUNDS (index -> successes), summed on read.
    """
    CREATE TABLE traffic (
        process TEXT NOT NULL,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        policy INTEGER NOT NULL,
        minute INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latency TEXT NOT NULL,
        PRIMARY KEY (process, model, version, policy, minute)
    );
    CREATE INDEX traffic_model ON traffic(model, minute);
    CREATE INDEX traffic_age ON traffic(minute);
    """,
    # Migration 9 (7 and 8 are kpi and traffic's): experiments (store/experiments.py), their spec as JSON and the
    # version each arm was pinned to; and the promotion record a proposal keeps once approved on an experiment.
    """
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        versions TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        stopped_at TEXT,
        stopped_by TEXT,
        stop_reason TEXT,
        policy_tag INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX experiments_model ON experiments(model, id);
    CREATE INDEX experiments_state ON experiments(state, id);
    ALTER TABLE proposals ADD COLUMN evidence TEXT;
    """,
    # Migration 10: the traffic minutes also count failures by HTTP status (JSON object status -> count), the
    # successes over the model's SLO latency threshold, and on the version's own row (policy -1) rows, batches and
    # the largest queue depth sampled; each process's CPU seconds and resident bytes per minute (ops/history.py).
    """
    ALTER TABLE traffic ADD COLUMN statuses TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE traffic ADD COLUMN slow INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE traffic ADD COLUMN row_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE traffic ADD COLUMN batches INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE traffic ADD COLUMN queue_depth_max INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE process_minutes (
        process TEXT NOT NULL,
        minute INTEGER NOT NULL,
        cpu_s REAL NOT NULL,
        rss_bytes INTEGER NOT NULL,
        PRIMARY KEY (process, minute)
    );
    CREATE INDEX process_minutes_age ON process_minutes(minute);
    """,
    # Migration 11: secrets the server makes once and every worker shares (store/secrets.py), e.g. the key that
    # signs dashboard sessions, so a session holds on every worker and across restarts.
    """
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    """,
    # Migration 12: each process's live drift windows per version (store/drift_windows.py), saved periodically so a
    # report merges every worker's and replica's windows; ``state`` is the format drift/ writes, ``saved_us`` µs UTC.
    """
    CREATE TABLE drift_windows (
        process TEXT NOT NULL,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        state BLOB NOT NULL,
        rows INTEGER NOT NULL,
        saved_us INTEGER NOT NULL,
        PRIMARY KEY (process, model, version)
    );
    CREATE INDEX drift_windows_version ON drift_windows(model, version);
    """,
)


class Database:
    """A SQLite file opened in WAL mode; every write goes through one lock so threads can share it."""

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

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """Run one write statement; returns the last row id."""
        with self._lock:
            return self._conn.execute(sql, params).lastrowid or 0

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Run one read statement and return every row."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Several statements as one atomic write: all land or none (rolled back on any exception)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
