"""The store's one interface (:class:`Database`), which SQLite and PostgreSQL implement; :mod:`driftline.store.db`
opens one (:func:`~driftline.store.db.open_database`).

Every owner of tables (``store/*.py``) writes its SQL once, in the subset both speak (``?`` placeholders,
``INSERT ... ON CONFLICT``), against :class:`Database`; the PostgreSQL store translates the few spellings that
differ (:mod:`driftline.store.postgres_sql`). SQLite is the default: one file, for one host. PostgreSQL is for
several replicas sharing aliases, routing, keys, approvals, the audit log and every counter.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Literal, Protocol

from driftline.errors import StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractContextManager

__all__ = ["STORE_ERRORS", "Connection", "Cursor", "Database", "Dialect", "Row"]

Dialect = Literal["sqlite", "postgresql"]


class Row(Protocol):
    """One result row: by position, by column name, and ``dict(row)`` (sqlite3.Row is one)."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def keys(self) -> list[str]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


class Cursor(Protocol):
    """What a statement run in a transaction answers."""

    @property
    def lastrowid(self) -> int | None: ...
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The connection :meth:`Database.transaction` yields (sqlite3.Connection is one)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Cursor: ...


#: What a statement that could not be carried out raises, whichever the store (psycopg is imported only when a
#: PostgreSQL store is used: a lost connection reaches callers as StoreUnavailable).
STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, StoreUnavailable)


class Database(ABC):
    """A migrated store: statements run one at a time per process (a lock), writes in :meth:`transaction` are
    atomic and serialized across every process sharing the store."""

    #: Which SQL the store speaks (for the rare fragment that differs, e.g. :meth:`integer_part`).
    dialect: Dialect
    #: What the store is, for messages: a file path, or a URL without its password.
    path: str

    @abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one write statement; returns the new row's id for an insert into a table with an ``id``."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one read statement and return every row."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """Several statements as one atomic write: all land or none (rolled back on any exception)."""

    @abstractmethod
    def data_version(self) -> int:
        """A number that changes when another process commits a change the server follows (aliases, routing,
        pins, keys, proposals, experiments), so a poll can skip the reload when it did not change."""

    @abstractmethod
    def schema_version(self) -> int:
        """How many of the migrations (:mod:`driftline.store.migrations`) the store has applied."""

    @abstractmethod
    def check_integrity(self) -> None:
        """Check the store once at server start (raises ConfigError naming what is wrong)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def integer_part(self, expr: str) -> str:
        """SQL for ``expr`` truncated toward zero to an integer (SQLite's CAST truncates; PostgreSQL's rounds)."""
        return f"CAST({expr} AS INTEGER)" if self.dialect == "sqlite" else f"CAST(TRUNC({expr}) AS BIGINT)"
