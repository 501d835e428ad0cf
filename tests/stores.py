"""Where a test's store lives, for the tests that run against both stores: a SQLite file, or a fresh database on
the session's real PostgreSQL server (tests/postgres.py). One name gives one store within a test, so a test that
reopens "its" store (a restart, a second process) reaches the same one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["StoreLocations"]


class NewDatabase(Protocol):
    def new_database(self) -> str: ...


class StoreLocations:
    """``locations("t.db")``: a path under the test's folder (sqlite) or a database URL (postgresql)."""

    def __init__(self, kind: str, folder: Path, server: NewDatabase | None) -> None:
        self.kind = kind
        self._folder = folder
        self._server = server
        self._made: dict[str, str] = {}

    def __call__(self, name: str = "driftline.db") -> str:
        if self._server is None:
            return str(self._folder / name)
        if name not in self._made:
            self._made[name] = self._server.new_database()
        return self._made[name]
