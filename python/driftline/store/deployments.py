"""What an operator deployed at run time, per model: aliases, routing policies, pins, and the registry aliases acted on.

The live copies are in the model table; this is what survives a restart and what other worker processes read.
Routing policies are kept as the JSON text the lifecycle gives (it owns their shape; the store only keeps them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = ["AliasRow", "DeploymentStore"]


class AliasRow(msgspec.Struct, frozen=True):
    """An alias and the version it pointed at before its last move (what a rollback returns to)."""

    model: str
    alias: str
    version: int
    previous: int | None
    updated_at: str


class DeploymentStore:
    """Reads and writes the aliases, routing, pins and registry_aliases tables (migration 3 in :mod:`.db`)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    # -- aliases ------------------------------------------------------------------------------------------------

    def aliases(self, model: str | None = None) -> list[AliasRow]:
        """Every alias, or one model's."""
        where, params = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = self.db.query(f"SELECT * FROM aliases {where} ORDER BY model, alias", params)  # noqa: S608
        return [AliasRow(**dict(r)) for r in rows]

    def seed_alias(self, model: str, alias: str, version: int) -> bool:
        """Insert an alias from config.toml unless the store already has it (the store wins after the first start);
        True for the one process that inserted it, when several start at once."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO aliases (model, alias, version) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (model, alias, version),
            )
            return cursor.rowcount == 1

    def move_alias(self, model: str, alias: str, version: int, previous: int | None) -> None:
        """Point an alias at a version, remembering where it pointed before."""
        self.db.execute(
            "INSERT INTO aliases (model, alias, version, previous) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, previous = excluded.previous,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            (model, alias, version, previous),
        )

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove an alias."""
        self.db.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", (model, alias))

    # -- routing and pins ---------------------------------------------------------------------------------------

    def routing(self) -> dict[str, str]:
        """Every model's stored routing policy, as the JSON text it was stored as."""
        return {r["model"]: r["policy"] for r in self.db.query("SELECT model, policy FROM routing")}

    def set_routing(self, model: str, policy: str | None) -> None:
        """Store a model's routing policy (JSON text); None (no policy) removes it."""
        if policy is None:
            self.db.execute("DELETE FROM routing WHERE model = ?", (model,))
            return
        self.db.execute(
            "INSERT INTO routing (model, policy) VALUES (?, ?) ON CONFLICT (model) DO UPDATE SET"
            " policy = excluded.policy, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            (model, policy),
        )

    def pins(self) -> dict[str, set[int]]:
        """Versions loaded on request, per model."""
        out: dict[str, set[int]] = {}
        for row in self.db.query("SELECT model, version FROM pins"):
            out.setdefault(row["model"], set()).add(row["version"])
        return out

    def pin(self, model: str, version: int) -> None:
        """Keep a version loaded."""
        self.db.execute("INSERT INTO pins (model, version) VALUES (?, ?) ON CONFLICT DO NOTHING", (model, version))

    def unpin(self, model: str, version: int) -> None:
        """Stop keeping a version loaded."""
        self.db.execute("DELETE FROM pins WHERE model = ? AND version = ?", (model, version))

    # -- registry aliases ---------------------------------------------------------------------------------------

    def registry_aliases(self, source: str) -> dict[tuple[str, str], int]:
        """The alias values last taken from a registry source: (model, alias) -> version."""
        rows = self.db.query("SELECT model, alias, version FROM registry_aliases WHERE source = ?", (source,))
        return {(r["model"], r["alias"]): r["version"] for r in rows}

    def remember_registry_alias(self, source: str, model: str, alias: str, version: int) -> None:
        """Record that a registry alias value has been acted on."""
        self.db.execute(
            "INSERT INTO registry_aliases (source, model, alias, version) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (source, model, alias) DO UPDATE SET version = excluded.version",
            (source, model, alias, version),
        )

    def forget_registry_alias(self, source: str, model: str, alias: str) -> None:
        """The registry no longer speaks for this alias (deleted there, or moved here since)."""
        self.db.execute(
            "DELETE FROM registry_aliases WHERE source = ? AND model = ? AND alias = ?", (source, model, alias)
        )
