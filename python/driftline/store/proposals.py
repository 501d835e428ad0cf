"""Proposals: a candidate version for an alias on its way through propose -> approve -> promote (or reject)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = ["Proposal", "ProposalStore"]


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
    # The promotion record, set when it was approved on an experiment's evidence (migration 9): the experiment,
    # its final numbers, the rules and who approved; promotion keeps it.
    evidence: dict[str, Any] | None


class ProposalStore:
    """Reads and writes the proposals table (migration 3 in :mod:`driftline.store.db`; ``evidence``: 9)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

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
        return _proposal(dict(rows[0])) if rows else None

    def proposals(self, model: str | None = None, limit: int = 100) -> list[Proposal]:
        """The newest proposals first."""
        where, params = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = self.db.query(f"SELECT * FROM proposals {where} ORDER BY id DESC LIMIT ?", (*params, limit))  # noqa: S608
        return [_proposal(dict(r)) for r in rows]

    def decide(
        self, pid: int, state: str, actor: str, reason: str | None, expect: str, evidence: str | None = None
    ) -> bool:
        """Move a proposal from state ``expect`` to ``state``; False when it was not in ``expect`` (a race lost).
        ``evidence`` (JSON text) is stored with it; None keeps what it has."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE proposals SET state = ?, decided_by = ?, reason = COALESCE(?, reason),"
                " evidence = COALESCE(?, evidence), updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE id = ? AND state = ?",
                (state, actor, reason, evidence, pid, expect),
            )
            return cursor.rowcount == 1


def _proposal(data: dict[str, Any]) -> Proposal:
    data["rule"] = msgspec.json.decode(data["rule"]) if data["rule"] else None
    data["evidence"] = msgspec.json.decode(data["evidence"]) if data.get("evidence") else None
    return Proposal(**data)
