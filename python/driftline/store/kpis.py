"""Business KPI events (conversions, revenue, ...): each names a captured request (by id) or an entity, a KPI name
and a value. Which version earned it is decided when it is read (driftline.feedback.kpis), not here: the capture
may be written after the event arrives.

Events are sums: the same event posted twice is stored twice, unless it carries an ``event_id`` (the client's
idempotency key), which replaces the earlier event of that id and so counts once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import msgspec
import polars as pl

if TYPE_CHECKING:
    from collections.abc import Iterable

    from driftline.store.db import Database

__all__ = ["FRAME_SCHEMA", "KpiEvent", "KpiStore"]

#: The columns of :meth:`KpiStore.frame`, in order.
FRAME_SCHEMA: Final = pl.Schema(
    {
        "name": pl.String(),
        "value": pl.Float64(),
        "at": pl.Datetime("us", "UTC"),
        "request_id": pl.String(),
        "entity": pl.String(),
    }
)
_COLUMNS = "model, name, value, request_id, entity, at_us, event_id, received_at"
_INSERT = f"INSERT INTO kpi_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 - constant text
_UPSERT = (
    f"{_INSERT} ON CONFLICT (model, event_id) DO UPDATE SET name = excluded.name, value = excluded.value, "
    "request_id = excluded.request_id, entity = excluded.entity, at_us = excluded.at_us, "
    "received_at = excluded.received_at"
)


class KpiEvent(msgspec.Struct, frozen=True):
    """One KPI event, keyed by a captured request's id or by an entity (exactly one of the two).

    Attributes:
        name: The KPI (``conversion``, ``revenue``).
        value: Its value: 1 for a conversion, an amount for revenue.
        request_id: The inference request's id (any of its rows), or None for an event of an entity.
        entity: The caller's key (``parameters.entity``), or None for an event of a request.
        at_us: When the event happened, µs since the epoch (UTC); None: when the store receives it.
        event_id: The client's idempotency key: an event with the same one replaces the earlier; None: always new.
    """

    name: str
    value: float
    request_id: str | None = None
    entity: str | None = None
    at_us: int | None = None
    event_id: str | None = None


class KpiStore:
    """Reads and writes the kpi_events table (the KPI migration in :mod:`driftline.store.db`)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    def put(self, model: str, events: Iterable[KpiEvent]) -> int:
        """Store events of ``model`` in one transaction (all or none); returns how many were stored: an event_id
        given twice in ``events`` keeps its last event and counts once.

        Raises:
            ValueError: an event has both or neither of request_id and entity (the parsers refuse those before
                they get here, with the field named).
        """
        now_us = time.time_ns() // 1000
        received = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        plain: list[tuple[object, ...]] = []
        keyed: dict[str, tuple[object, ...]] = {}
        for e in events:
            if (e.request_id is None) == (e.entity is None):
                raise ValueError("a KPI event is keyed by request_id or by entity, exactly one of the two")
            at = now_us if e.at_us is None else e.at_us
            row = (model, e.name, e.value, e.request_id, e.entity, at, e.event_id, received)
            if e.event_id is None:
                plain.append(row)
            else:
                keyed.pop(e.event_id, None)  # re-inserted: the last one's place and value
                keyed[e.event_id] = row
        with self.db.transaction() as conn:
            conn.executemany(_INSERT, plain)
            conn.executemany(_UPSERT, list(keyed.values()))
        return len(plain) + len(keyed)

    def frame(self, model: str) -> pl.DataFrame:
        """Every event of ``model`` as :data:`FRAME_SCHEMA`'s columns, in the order they were first stored."""
        rows = self.db.query(
            "SELECT name, value, at_us, request_id, entity FROM kpi_events WHERE model = ? ORDER BY id", (model,)
        )
        frame = pl.DataFrame(
            [tuple(r) for r in rows],
            schema={
                "name": pl.String,
                "value": pl.Float64,
                "at": pl.Int64,
                "request_id": pl.String,
                "entity": pl.String,
            },
            orient="row",
        )
        return frame.with_columns(pl.col("at").cast(FRAME_SCHEMA["at"]))

    def erase_entity(self, entity: str, requests: Iterable[tuple[str, str]] = ()) -> int:
        """Delete every model's events of ``entity``, and the events of the given (model, request id) pairs (the
        entity's captured requests: an event keyed by request id carries no entity of its own). Returns the rows
        removed."""
        with self.db.transaction() as conn:
            removed = conn.execute("DELETE FROM kpi_events WHERE entity = ?", (entity,)).rowcount
            for model, request_id in requests:
                removed += conn.execute(
                    "DELETE FROM kpi_events WHERE model = ? AND request_id = ?", (model, request_id)
                ).rowcount
        return removed
