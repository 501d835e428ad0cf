"""The PostgreSQL store (psycopg 3): several replicas share one schema, every write serialized as SQLite's are.

One connection per process, in autocommit, behind a lock, as the SQLite store has. A write transaction first
takes a transaction-level advisory lock, so writes from every process follow one another as they do on one SQLite
file (``BEGIN IMMEDIATE``): the read-then-write owners (traffic minutes, keys, proposals) stay correct without
serializable retries. Statements are translated once each (:mod:`driftline.store.postgres_sql`). A lost connection
answers :class:`~driftline.errors.StoreUnavailable` (503) and the next statement connects again.

Changes that other processes follow are counted by statement triggers into one row (``driftline_changes``), which
:meth:`PostgresDatabase.data_version` reads: one indexed single-row read per ``refresh_interval_s`` and process.
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from driftline.errors import ConfigError, StoreUnavailable
from driftline.store.base import Database
from driftline.store.migrations import MIGRATIONS
from driftline.store.postgres_sql import ddl, statement

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from psycopg.rows import RowMaker

    from driftline.store.base import Connection, Row

__all__ = ["PostgresDatabase", "advisory_key", "connect", "redacted"]

#: The tables whose changes other processes take in (lifecycle.follow_store, the API keys, experiments).
FOLLOWED: Final = ("aliases", "routing", "pins", "api_keys", "proposals", "experiments", "registry_aliases")
_CONNECT_TIMEOUT_S: Final = 10
# TCP keepalives both ways: this side notices a server that vanished, and the server (its session settings, asked
# for in ``options``) ends the session of a replica whose host vanished within ~25 s, letting its advisory locks go
# (the server's default is the kernel's: two hours).
_KEEPALIVE: Final = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
_SERVER_KEEPALIVE: Final = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a name."""
    return int.from_bytes(hashlib.sha256(f"driftline:{name}".encode()).digest()[:8], "big", signed=True)


_MIGRATE_LOCK: Final = advisory_key("migrate")
_WRITE_LOCK: Final = advisory_key("write")


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _Numeric(Loader):
    """numeric as int when it is whole (SUM of a bigint column is numeric: counts must stay ints), else float."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


class PgRow:
    """A result row as sqlite3.Row is one: by position, by name, ``keys()`` and ``dict(row)``."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key if isinstance(key, int) else self._index[key]]

    def keys(self) -> list[str]:
        """The column names."""
        return list(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


def _rows(cursor: Any) -> RowMaker[PgRow]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(index, values)


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection with driftline's loaders and keepalives."""
    given = conninfo_to_dict(url).get("options")
    options = f"{given} {_SERVER_KEEPALIVE}" if given else _SERVER_KEEPALIVE
    conninfo = make_conninfo(
        url, connect_timeout=_CONNECT_TIMEOUT_S, application_name="driftline", options=options, **_KEEPALIVE
    )
    conn: psycopg.Connection[Any] = psycopg.connect(conninfo, autocommit=True, row_factory=_rows)
    conn.adapters.register_loader("numeric", _Numeric)
    return conn


class _Cursor:
    """A statement's answer in a transaction, with the id its insert made (``lastrowid``)."""

    def __init__(self, cursor: psycopg.Cursor[Any], with_id: bool) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid: int | None = None
        if with_id:
            row = cursor.fetchone()
            self.lastrowid = None if row is None else int(row[0])

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class _Connection:
    """What :meth:`PostgresDatabase.transaction` yields: execute/executemany with the SQL translated."""

    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        self._conn = conn
        self._where = where

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        text, with_id = statement(sql)
        with _unavailable(self._where):
            return _Cursor(self._conn.execute(text, tuple(parameters)), with_id)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> _Cursor:
        text, _ = statement(sql, returning=False)
        cursor = self._conn.cursor()
        with _unavailable(self._where):
            cursor.executemany(text, [tuple(p) for p in parameters])
        return _Cursor(cursor, with_id=False)


class PostgresDatabase(Database):
    """A PostgreSQL database shared by every replica; migrated at open by whichever process comes first."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        """Connect and migrate.

        Raises:
            ConfigError: the server cannot be reached or refuses, or the schema is newer than this driftline.
        """
        self.url = url
        self.path = redacted(url)
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._conn = connect(url)
            self._migrate()
        except psycopg.Error as exc:
            raise ConfigError(f"database {self.path}: {_reason(exc)}") from None

    def _migrate(self) -> None:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            self._conn.execute("CREATE TABLE IF NOT EXISTS driftline_schema (version INTEGER NOT NULL)")
            row = self._conn.execute("SELECT version FROM driftline_schema").fetchone()
            current = 0 if row is None else int(row[0])
            if current > len(MIGRATIONS):
                raise ConfigError(
                    f"database {self.path} has schema version {current}, newer than this driftline's "
                    f"{len(MIGRATIONS)}: upgrade driftline"
                )
            if current == len(MIGRATIONS):
                return
            if current == 0:
                self._conn.execute(_CHANGES_DDL)
            for script in MIGRATIONS[current:]:
                self._conn.execute(ddl(script))
            for table in FOLLOWED:
                self._conn.execute(
                    f"CREATE OR REPLACE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}"
                    " FOR EACH STATEMENT EXECUTE FUNCTION driftline_changed()"
                )
            self._conn.execute("DELETE FROM driftline_schema")
            self._conn.execute("INSERT INTO driftline_schema (version) VALUES (%s)", (len(MIGRATIONS),))

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, made again if the last one was lost (caller holds the lock)."""
        if self._closed:
            raise StoreUnavailable(f"database {self.path}: closed by this process")
        if self._conn.closed or self._conn.broken:
            with _unavailable(self.path):
                self._conn = connect(self.url)
        return self._conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one write statement; returns the new row's id for an insert into a table with an ``id``."""
        text, with_id = statement(sql)
        with self._lock, _unavailable(self.path):
            cursor = self._live().execute(text, tuple(params))
            row = cursor.fetchone() if with_id else None
            return 0 if row is None else int(row[0])

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one read statement and return every row."""
        text, _ = statement(sql, returning=False)
        with self._lock, _unavailable(self.path):
            rows: list[Row] = self._live().execute(text, tuple(params)).fetchall()
            return rows

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Several statements as one atomic write, after every other process's write transaction."""
        with self._lock:
            conn = self._live()
            with _unavailable(self.path), conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
                yield _Connection(conn, self.path)

    def data_version(self) -> int:
        """The count of committed changes to the followed tables, by any process."""
        row = self.query("SELECT n FROM driftline_changes")
        return int(row[0][0]) if row else 0

    def schema_version(self) -> int:
        """The version the last migration recorded."""
        return int(self.query("SELECT version FROM driftline_schema")[0][0])

    def check_integrity(self) -> None:
        """PostgreSQL checks its own pages; this checks the server answers (the schema was checked at open)."""
        try:
            self.query("SELECT 1")
        except StoreUnavailable as exc:
            raise ConfigError(str(exc)) from None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._closed = True
            self._conn.close()

    def __del__(self) -> None:
        # A store dropped without close() (a short-lived CLI command's, a test's) closes its connection quietly,
        # as a dropped sqlite3 connection does.
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()


_CHANGES_DDL: Final = """
CREATE TABLE driftline_changes (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
INSERT INTO driftline_changes (id, n) VALUES (1, 0);
CREATE OR REPLACE FUNCTION driftline_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE driftline_changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END $$;
"""


@contextmanager
def _unavailable(where: str) -> Iterator[None]:
    """A lost or refused connection as driftline's 503 naming the store; other errors as they are."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"database {where}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
