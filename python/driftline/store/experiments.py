"""Experiments as the server runs them: the spec as created, the version each arm was pinned to, running or stopped.

The service (:mod:`driftline.experiments.service`) checks and applies them and owns their shape (the spec and the
arm -> version map are kept as the JSON text it gives, as routing policies are); this only keeps them (migration 9
in :mod:`driftline.store.db`). A stop is one conditional UPDATE, so of two stops in any processes exactly one wins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = ["ExperimentRow", "ExperimentStore"]


class ExperimentRow(msgspec.Struct, frozen=True):
    """One stored experiment; ``spec`` and ``versions`` are JSON text."""

    id: int
    model: str
    name: str
    spec: str
    versions: str
    state: str
    started_at: str
    created_by: str
    stopped_at: str | None
    stopped_by: str | None
    stop_reason: str | None
    policy_tag: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ExperimentStore:
    """Reads and writes the experiments table."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    def create(self, model: str, name: str, spec: str, versions: str, actor: str, policy_tag: int) -> ExperimentRow:
        """Record a new running experiment, started now; ``policy_tag``: the tag of the routing policy it sets."""
        eid = self.db.execute(
            "INSERT INTO experiments (model, name, spec, versions, state, started_at, created_by, policy_tag)"
            " VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
            (model, name, spec, versions, _now(), actor, policy_tag),
        )
        experiment = self.get(model, eid)
        assert experiment is not None
        return experiment

    def delete(self, eid: int) -> None:
        """Remove an experiment whose start was refused after it was recorded (so a refused start leaves none)."""
        self.db.execute("DELETE FROM experiments WHERE id = ?", (eid,))

    def get(self, model: str, eid: int) -> ExperimentRow | None:
        """One experiment of ``model`` by id (None: none, or another model's)."""
        rows = self.db.query("SELECT * FROM experiments WHERE id = ? AND model = ?", (eid, model))
        return _experiment(dict(rows[0])) if rows else None

    def experiments(self, model: str | None = None, state: str | None = None, limit: int = 1000) -> list[ExperimentRow]:
        """Experiments, newest first; optionally one model's, one state's."""
        clauses: list[str] = ["1 = 1"]
        params: list[object] = []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        where = " AND ".join(clauses)
        rows = self.db.query(f"SELECT * FROM experiments WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit))  # noqa: S608 - fixed fragments
        return [_experiment(dict(r)) for r in rows]

    def stop(self, eid: int, actor: str, reason: str | None) -> bool:
        """Mark a running experiment stopped now; False when it was not running (a race lost)."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE experiments SET state = 'stopped', stopped_at = ?, stopped_by = ?, stop_reason = ?"
                " WHERE id = ? AND state = 'running'",
                (_now(), actor, reason, eid),
            )
            return cursor.rowcount == 1


def _experiment(data: dict[str, Any]) -> ExperimentRow:
    return ExperimentRow(**data)
