"""The audit trail: every load, unload, failed load, alias, routing and key change, approval, promotion and
rollback, with who, what and why."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from driftline.store.db import Connection, Database

__all__ = ["AuditAction", "AuditEvent", "AuditLog"]


class AuditAction(StrEnum):
    """Every kind of event the audit log holds: the one list, so a filter (``?action=``) can name them all."""

    ALIAS_DELETED = "alias_deleted"
    ALIAS_REFUSED = "alias_refused"
    ALIAS_SET = "alias_set"
    APPROVE = "approve"
    APPROVE_REFUSED = "approve_refused"
    CAPTURE_ERASED = "capture_erased"
    DELETE_REFUSED = "delete_refused"
    EVALUATE = "evaluate"
    EXPERIMENT_GUARDRAIL_STOP = "experiment_guardrail_stop"
    EXPERIMENT_STARTED = "experiment_started"
    EXPERIMENT_STOPPED = "experiment_stopped"
    KEY_CREATED = "key_created"
    KEY_REVOKED = "key_revoked"
    LOAD = "load"
    LOAD_FAILED = "load_failed"
    PROMOTE = "promote"
    PROMOTE_REFUSED = "promote_refused"
    PROPOSE = "propose"
    REJECT = "reject"
    REPUBLISH_REFUSED = "republish_refused"
    ROLLBACK = "rollback"
    ROUTING_SET = "routing_set"
    UNLOAD = "unload"


class AuditEvent(msgspec.Struct, frozen=True):
    """One row of the audit log."""

    id: int
    at: str
    actor: str
    action: AuditAction
    model: str
    version_before: str | None
    version_after: str | None
    sha256: str | None
    reason: str | None


class AuditLog:
    """Writes and reads audit events in the store."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self._db = db

    def record(
        self,
        action: AuditAction,
        model: str,
        *,
        actor: str = "system",
        version_before: str | None = None,
        version_after: str | None = None,
        sha256: str | None = None,
        reason: str | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Append one event; returns its id. ``conn``: inside a `Database.transaction`, so it lands with the change."""
        sql = (
            "INSERT INTO audit_log (actor, action, model, version_before, version_after, sha256, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        params = (actor, action, model, version_before, version_after, sha256, reason)
        if conn is not None:
            return conn.execute(sql, params).lastrowid or 0
        return self._db.execute(sql, params)

    def events(
        self, model: str | None = None, limit: int = 100, action: AuditAction | None = None, after_id: int = 0
    ) -> list[AuditEvent]:
        """The newest events first, optionally for one model, one action, or only those after an event id."""
        clauses = ["id > ?"]
        params: list[object] = [after_id]
        if model:
            clauses.append("model = ?")
            params.append(model)
        if action:
            clauses.append("action = ?")
            params.append(action)
        where = " AND ".join(clauses)
        rows = self._db.query(f"SELECT * FROM audit_log WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit))  # noqa: S608 - fixed fragments
        return [AuditEvent(**{**dict(row), "action": AuditAction(row["action"])}) for row in rows]

    def search(
        self,
        *,
        actor: str | None = None,
        action: AuditAction | None = None,
        model: str | None = None,
        since: str | None = None,
        until: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """The newest events first that match every filter given: ``since``/``until`` are times as the log stores
        them (``YYYY-MM-DDTHH:MM:SS.fffZ``, compared as text: that format sorts by time), ``[since, until)``;
        ``before_id`` pages back (the events older than that one). The dashboard's audit view reads this."""
        clauses, params = ["TRUE"], list[object]()
        for column, op, value in (
            ("actor", "=", actor),
            ("action", "=", action),
            ("model", "=", model),
            ("at", ">=", since),
            ("at", "<", until),
            ("id", "<", before_id),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        where = " AND ".join(clauses)
        rows = self._db.query(f"SELECT * FROM audit_log WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit))  # noqa: S608 - fixed fragments
        return [AuditEvent(**{**dict(row), "action": AuditAction(row["action"])}) for row in rows]
