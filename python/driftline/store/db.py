"""Opening the store: :func:`open_database` picks SQLite (a file path) or PostgreSQL (a ``postgresql://`` URL).

Every owner of tables (``store/*.py``) writes its SQL once, in the subset both speak (``?`` placeholders,
``INSERT ... ON CONFLICT``), against :class:`Database` (:mod:`driftline.store.base`); the PostgreSQL store
translates the few spellings that differ (:mod:`driftline.store.postgres_sql`). SQLite is the default: one file,
for one host. PostgreSQL is for several replicas sharing aliases, routing, keys, approvals, the audit log and
every counter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.store.base import STORE_ERRORS, Connection, Cursor, Database, Row

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["STORE_ERRORS", "Connection", "Cursor", "Database", "Row", "is_postgres_url", "open_database"]


def is_postgres_url(location: str) -> bool:
    """Whether ``database`` names a PostgreSQL server rather than a SQLite file."""
    return location.startswith(("postgresql://", "postgres://"))


def open_database(location: str | Path) -> Database:
    """Open (creating and migrating if needed) the store ``location`` names: a ``postgresql://`` URL, else a
    SQLite file path (``:memory:`` works too).

    Raises:
        ConfigError: naming the store, when it cannot be reached, created, opened or written.
    """
    text = str(location)
    if is_postgres_url(text):
        from driftline.store.postgres import PostgresDatabase

        return PostgresDatabase(text)
    from driftline.store.sqlite import SqliteDatabase

    return SqliteDatabase(text)
