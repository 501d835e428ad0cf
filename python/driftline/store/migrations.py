"""The store's schema, as SQLite migrations applied in order; PostgreSQL runs the same ones translated
(:mod:`driftline.store.postgres_sql`), so both stores have one schema and one version number."""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

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
    # Migration 13: a job is run by the one process that claimed it (``owner``) while its lease lasts
    # (``lease_us``, µs UTC, renewed as it runs); a cancel asked of any process is a flag the owner reads.
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    ALTER TABLE jobs ADD COLUMN lease_us INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    """,
    # Migration 14: the last alert state any process announced per alert key (store/alert_states.py), so of the
    # processes that see the same change, one sends its webhook.
    """
    CREATE TABLE alert_states (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (kind, key)
    );
    """,
)
