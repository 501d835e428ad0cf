"""Ground-truth labels (feedback): one per (model, request id, row) or per (model, entity), the target as JSON text.

The store keeps the target as the JSON the caller sent (checked against the model's task before it gets here), so
it needs nothing from the layers that interpret it; the join to captured rows happens above (driftline.feedback).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from driftline.store.db import Connection, Database, Row

__all__ = ["Feedback", "FeedbackStore", "PutCounts"]

_COLUMNS = "request_id, row, entity, target, received_at"


class Feedback(msgspec.Struct, frozen=True):
    """One label, keyed by (request_id, row) of a captured request, or by entity (exactly one of the two).

    Attributes:
        target: The true label or value, as JSON text.
        request_id: The inference request's id (with ``row``), or None for a label of an entity.
        row: The row of that request (0 for a one-row request).
        entity: The caller's key (``parameters.entity``), or None for a label of a request row.
        received_at: When the label was last written (set by the store; ignored by :meth:`FeedbackStore.put`).
    """

    target: str
    request_id: str | None = None
    row: int | None = None
    entity: str | None = None
    received_at: datetime | None = None


class PutCounts(msgspec.Struct, frozen=True):
    """What one put did: ``stored`` distinct keys written, of which ``replaced`` already had a label.

    ``unmatched``: of those keys, how many name no captured row *as of the post* (rows still queued in the capture
    writer are not visible yet, so a label posted right after its prediction may count here and match a moment
    later; the quality report's ``unmatched`` is the live figure). The store cannot tell (it knows no captures):
    the feedback route counts it, and leaves it None when the model's capture history is too large to read per
    post (driftline.feedback.service.UNMATCHED_SCAN_ROWS).
    """

    stored: int
    replaced: int
    unmatched: int | None = None


def _stamp(at: datetime) -> str:
    """Fixed-width UTC text to the microsecond, so that text order is time order."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(r: Row) -> Feedback:
    return Feedback(
        target=r["target"],
        request_id=r["request_id"],
        row=r["row"],
        entity=r["entity"],
        received_at=datetime.fromisoformat(r["received_at"]),
    )


def _changes(conn: Connection, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
    """Rows changed by ``sql`` run once per parameter tuple (sqlite3 gives -1, not 0, for no tuples)."""
    return conn.executemany(sql, rows).rowcount if rows else 0


class FeedbackStore:
    """Reads and writes the feedback table (the feedback migration in :mod:`driftline.store.db`)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    def put(self, model: str, items: Iterable[Feedback]) -> PutCounts:
        """Store labels of ``model`` in one transaction: a key given twice keeps its last value and counts once.

        Raises:
            ValueError: an item has both or neither of (request_id, row) and entity (the parsers refuse those
                before they get here, with the field named).
        """
        by_request: dict[tuple[str, int], str] = {}
        by_entity: dict[str, str] = {}
        for item in items:
            if item.request_id is not None and item.row is not None and item.entity is None:
                by_request.pop((item.request_id, item.row), None)  # re-inserted: the last one's place and value
                by_request[(item.request_id, item.row)] = item.target
            elif item.request_id is None and item.row is None and item.entity is not None:
                by_entity.pop(item.entity, None)
                by_entity[item.entity] = item.target
            else:
                raise ValueError("a label is keyed by (request_id, row) or by entity, exactly one of the two")
        now = _stamp(datetime.now(UTC))
        requests = [(target, now, model, rid, row) for (rid, row), target in by_request.items()]
        entities = [(target, now, model, entity) for entity, target in by_entity.items()]
        with self.db.transaction() as conn:
            # Update first: its row count is the number replaced; the insert then adds only the new keys.
            replaced = _changes(
                conn,
                "UPDATE feedback SET target = ?, received_at = ? WHERE model = ? AND request_id = ? AND row = ?",
                requests,
            )
            replaced += _changes(
                conn, "UPDATE feedback SET target = ?, received_at = ? WHERE model = ? AND entity = ?", entities
            )
            _changes(
                conn,
                "INSERT INTO feedback (target, received_at, model, request_id, row) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                requests,
            )
            _changes(
                conn,
                "INSERT INTO feedback (target, received_at, model, entity) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                entities,
            )
        return PutCounts(stored=len(requests) + len(entities), replaced=replaced)

    def labels(self, model: str, since: datetime | None = None) -> list[Feedback]:
        """Every label of ``model`` (written at or after ``since`` when given), oldest write first."""
        params: tuple[str, ...]
        where, params = "model = ?", (model,)
        if since is not None:
            where, params = "model = ? AND received_at >= ?", (model, _stamp(since))
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM feedback WHERE {where} ORDER BY received_at, id",  # noqa: S608
            params,
        )
        return [_record(r) for r in rows]

    def by_entity(self, model: str, entity: str) -> Feedback | None:
        """The label of ``entity`` for ``model``, if there is one."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM feedback WHERE model = ? AND entity = ?",  # noqa: S608
            (model, entity),
        )
        return _record(rows[0]) if rows else None

    def erase_entity(self, entity: str, requests: Iterable[tuple[str, str]] = ()) -> int:
        """Delete every model's label of ``entity``, and the labels of the given (model, request id) pairs.

        The pairs are the entity's captured requests (the capture store knows them): a label keyed by request id
        carries no entity of its own. Returns the rows removed.
        """
        with self.db.transaction() as conn:
            removed = conn.execute("DELETE FROM feedback WHERE entity = ?", (entity,)).rowcount
            removed += _changes(conn, "DELETE FROM feedback WHERE model = ? AND request_id = ?", list(requests))
        return removed
