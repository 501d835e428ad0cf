"""Persistence of the serving state an operator changes at run time: aliases, routing, pins, proposals, API keys.

The live copies are in the model table; this is what survives a restart and what other worker processes read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from driftline.errors import Conflict
from driftline.security.keys import check_role, hash_key, new_key
from driftline.serving.routing import RoutingPolicy
from driftline.serving.shadow import ShadowPair
from driftline.store.audit import AuditAction, AuditLog

if TYPE_CHECKING:
    from collections.abc import Iterable

    from driftline.store.db import Database

__all__ = ["AliasRow", "ApiKeyRow", "LifecycleStore", "Proposal"]


class AliasRow(msgspec.Struct, frozen=True):
    """An alias and the version it pointed at before its last move (what a rollback returns to)."""

    model: str
    alias: str
    version: int
    previous: int | None
    updated_at: str


class Proposal(msgspec.Struct, frozen=True):
    """A candidate version for an alias, on its way through propose -> approve -> promote (or reject)."""

    id: int
    model: str
    alias: str
    version: int
    state: str
    rule: dict[str, float] | None
    proposed_by: str
    decided_by: str | None
    reason: str | None
    created_at: str
    updated_at: str


class ApiKeyRow(msgspec.Struct, frozen=True):
    """A stored API key: only its sha256 is kept."""

    id: int
    name: str
    role: str
    sha256: str
    created_at: str
    revoked_at: str | None


class LifecycleStore:
    """Reads and writes the lifecycle tables (see migration 3 in :mod:`driftline.store.db`)."""

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
        """Insert an alias from config.toml unless the store already has it (the store wins after the first start)."""
        before = self.db.query("SELECT 1 FROM aliases WHERE model = ? AND alias = ?", (model, alias))
        if before:
            return False
        self.db.execute("INSERT INTO aliases (model, alias, version) VALUES (?, ?, ?)", (model, alias, version))
        return True

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

    def routing(self) -> dict[str, RoutingPolicy]:
        """Every model's stored routing policy."""
        decoder = msgspec.json.Decoder(RoutingPolicy)
        return {r["model"]: decoder.decode(r["policy"]) for r in self.db.query("SELECT model, policy FROM routing")}

    def set_routing(self, model: str, policy: RoutingPolicy) -> None:
        """Store a model's routing policy (an empty one removes it)."""
        if policy.empty:
            self.db.execute("DELETE FROM routing WHERE model = ?", (model,))
            return
        self.db.execute(
            "INSERT INTO routing (model, policy) VALUES (?, ?) ON CONFLICT (model) DO UPDATE SET"
            " policy = excluded.policy, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            (model, msgspec.json.encode(policy).decode()),
        )

    def pins(self) -> dict[str, set[int]]:
        """Versions loaded on request, per model."""
        out: dict[str, set[int]] = {}
        for row in self.db.query("SELECT model, version FROM pins"):
            out.setdefault(row["model"], set()).add(row["version"])
        return out

    def pin(self, model: str, version: int) -> None:
        """Keep a version loaded."""
        self.db.execute("INSERT OR IGNORE INTO pins (model, version) VALUES (?, ?)", (model, version))

    def unpin(self, model: str, version: int) -> None:
        """Stop keeping a version loaded."""
        self.db.execute("DELETE FROM pins WHERE model = ? AND version = ?", (model, version))

    # -- proposals ----------------------------------------------------------------------------------------------

    def propose(
        self, model: str, alias: str, version: int, rule: dict[str, float] | None, actor: str, reason: str | None
    ) -> Proposal:
        """Record a new proposal in state ``proposed``."""
        pid = self.db.execute(
            "INSERT INTO proposals (model, alias, version, state, rule, proposed_by, reason)"
            " VALUES (?, ?, ?, 'proposed', ?, ?, ?)",
            (model, alias, version, msgspec.json.encode(rule).decode() if rule else None, actor, reason),
        )
        proposal = self.proposal(pid)
        assert proposal is not None
        return proposal

    def proposal(self, pid: int) -> Proposal | None:
        """One proposal by id."""
        rows = self.db.query("SELECT * FROM proposals WHERE id = ?", (pid,))
        return _proposal(rows[0]) if rows else None

    def proposals(self, model: str | None = None, limit: int = 100) -> list[Proposal]:
        """The newest proposals first."""
        where, params = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = self.db.query(f"SELECT * FROM proposals {where} ORDER BY id DESC LIMIT ?", (*params, limit))  # noqa: S608
        return [_proposal(r) for r in rows]

    def decide(self, pid: int, state: str, actor: str, reason: str | None, expect: str) -> bool:
        """Move a proposal from state ``expect`` to ``state``; False when it was not in ``expect`` (a race lost)."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE proposals SET state = ?, decided_by = ?, reason = COALESCE(?, reason),"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE id = ? AND state = ?",
                (state, actor, reason, pid, expect),
            )
            return cursor.rowcount == 1

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

    # -- shadow comparisons -------------------------------------------------------------------------------------

    _SHADOW_COUNTERS = (
        "requests",
        "compared_rows",
        "agreeing_rows",
        "abs_diff_sum",
        "abs_diff_count",
        "primary_latency_s",
        "shadow_latency_s",
        "shadow_errors",
        "dropped",
    )

    def save_shadow(self, process: str, pairs: list[ShadowPair]) -> None:
        """Store one process's running totals (absolute values, so a repeated write is harmless)."""
        if not pairs:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO shadow_stats (process, model, primary_version, shadow_version, requests,"
                " compared_rows, agreeing_rows, abs_diff_sum, abs_diff_count, primary_latency_s, shadow_latency_s,"
                " shadow_errors, dropped, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        process,
                        p.model,
                        p.primary,
                        p.shadow,
                        *(getattr(p, c) for c in self._SHADOW_COUNTERS),
                        p.last_error,
                    )
                    for p in pairs
                ],
            )

    def shadow_totals(self, model: str | None = None) -> list[ShadowPair]:
        """Every process's comparisons summed per (model, primary, shadow), across restarts and workers."""
        sums = ", ".join(f"SUM({c}) AS {c}" for c in self._SHADOW_COUNTERS)
        where, params = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = self.db.query(
            f"SELECT model, primary_version, shadow_version, {sums}, MAX(last_error) AS last_error"  # noqa: S608
            f" FROM shadow_stats {where} GROUP BY model, primary_version, shadow_version"
            " ORDER BY model, primary_version, shadow_version",
            params,
        )
        return [
            ShadowPair(
                r["model"],
                r["primary_version"],
                r["shadow_version"],
                **{c: r[c] for c in self._SHADOW_COUNTERS},
                last_error=r["last_error"],
            )
            for r in rows
        ]

    # -- API keys -----------------------------------------------------------------------------------------------

    def api_keys(self) -> list[ApiKeyRow]:
        """Every stored key, revoked ones included."""
        return [ApiKeyRow(**dict(r)) for r in self.db.query("SELECT * FROM api_keys ORDER BY id")]

    def create_key(self, name: str, role: str, reserved: Iterable[str] = (), *, actor: str) -> str:
        """Make a new key, store only its hash under a unique name, and return the key (shown this once).

        The admin API and ``driftline keys create`` both come here, so every key is audited as ``key_created``
        (by ``actor``) in the same transaction that stores it.

        Raises:
            ValueError: an unknown role.
            Conflict: the name is empty, or taken by a stored key or one of ``reserved`` (the config file's).
        """
        check_role(role)
        if not name or name in set(reserved) or any(k.name == name for k in self.api_keys()):
            raise Conflict(f"a key named {name!r} exists already (or the name is empty)")
        key = new_key()
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO api_keys (name, role, sha256) VALUES (?, ?, ?)", (name, role, hash_key(key)))
            AuditLog(self.db).record(AuditAction.KEY_CREATED, "-", actor=actor, reason=f"{name}: {role}", conn=conn)
        return key

    def revoke_key(self, name: str) -> bool:
        """Revoke a key by name; False when there is no such live key."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE name = ? AND revoked_at IS NULL",
                (name,),
            )
            return cursor.rowcount == 1


def _proposal(row: object) -> Proposal:
    data = dict(row)  # type: ignore[call-overload]
    data["rule"] = msgspec.json.decode(data["rule"]) if data["rule"] else None
    return Proposal(**data)
