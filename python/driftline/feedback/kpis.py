"""Business KPIs per version: events stored as they arrive, each attributed when read to the version that served
the captured request it names, so an event that arrives days after its request, or before the capture is written,
is attributed once both exist.

An event with ``id`` takes the version of the captured request with that id; with ``entity``, the version of that
entity's latest captured request at or before the event's ``at`` (else its first one after). The same rule picks
among requests that share an id. Shadow rows never attribute: the user saw the primary's answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - KpiSummary's annotations are read at run time (msgspec, OpenAPI)
from typing import TYPE_CHECKING, Final

import msgspec
import polars as pl
import pyarrow as pa

from driftline.capture.rows import FIXED
from driftline.feedback.service import UNMATCHED_SCAN_ROWS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.capture.reader import CaptureReader
    from driftline.store.kpis import KpiEvent, KpiStore

__all__ = ["Attributed", "KpiCounts", "KpiSummary", "KpiTotals", "KpiVersion", "Kpis", "attribute"]

_SHADOW: Final = "shadow"  # the capture arm of a shadow's copy of a request (capture/rows.py ARMS)
_CAPTURED: Final = ["request_id", "entity", "version", "ts", "arm"]


@dataclass(frozen=True, slots=True)
class Attributed:
    """A model's KPI events and the versions they are attributed to.

    Attributes:
        frame: One row per event, in the order stored: ``name`` (str), ``value`` (f64), ``at`` (datetime[us, UTC]),
            ``version`` (i32, null when unattributed), ``request_id`` and ``entity`` (str, null when unknown): the
            event's own key, the other one filled in from the captured request it is attributed to (the request
            an entity's event went to, the entity of a request's), so either assignment unit can be summed.
        unattributed: Per KPI name in ``frame``, its events without a version.
    """

    frame: pl.DataFrame
    unattributed: dict[str, int]


class KpiCounts(msgspec.Struct, frozen=True):
    """What one post did: ``stored`` events (an event_id given twice counts once), of which ``unattributed`` name
    no captured row as of the post (rows still queued for writing are not seen yet; None: the model's capture
    history is too large to read per post, UNMATCHED_SCAN_ROWS)."""

    stored: int
    unattributed: int | None


class KpiVersion(msgspec.Struct, frozen=True):
    """One KPI on one version: its events, their sum and the mean per event (null past a float's range)."""

    version: int
    events: int
    sum: float | None
    mean: float | None


class KpiTotals(msgspec.Struct, frozen=True):
    """One KPI: per version, and how many of its events no captured request claims."""

    name: str
    unattributed: int
    versions: list[KpiVersion]


class KpiSummary(msgspec.Struct, frozen=True):
    """A model's KPIs per version, over the requests captured in ``[since, until)`` (null: unbounded)."""

    model: str
    since: datetime | None
    until: datetime | None
    kpis: list[KpiTotals]


def _asof(events: pl.DataFrame, requests: pl.DataFrame, key: str) -> pl.DataFrame:
    """``events`` (sorted by ``at``) with the version, request id and entity (``_version``, ``_rid``, ``_entity``)
    of the latest request of the same ``key`` at or before ``at``, else of the first one after."""
    right = requests.filter(pl.col(key).is_not_null()).select(
        pl.col(key),
        pl.col("ts").alias("_ts"),
        pl.col("version").alias("_version"),
        pl.col("request_id").alias("_rid"),
        pl.col("entity").alias("_entity"),
    )
    picked = ["_version", "_rid", "_entity"]
    joins = [
        events.join_asof(right, left_on="at", right_on="_ts", by=key, strategy=s, check_sortedness=False)
        for s in ("backward", "forward")
    ]
    before, after = joins
    found = before["_version"].is_not_null()
    return events.with_columns(pl.when(found).then(before[c]).otherwise(after[c]).alias(c) for c in picked)


def attribute(events: pl.DataFrame, captured: pl.DataFrame) -> pl.DataFrame:
    """Each event of ``events`` (the store's frame: name, value, at, request_id, entity) with the version of the
    captured request it is attributed to (null: none), as the module says; ``captured`` has the columns
    request_id, entity, version, ts and arm."""
    requests = (
        captured.filter(pl.col("arm") != _SHADOW)
        .select("request_id", pl.col("entity").cast(pl.String), pl.col("version").cast(pl.Int32), "ts")
        .unique(["request_id", "ts", "version"], keep="first")
        .sort("ts")
    )
    ordered = events.with_row_index("_i").sort("at")
    by_id = _asof(ordered.filter(pl.col("request_id").is_not_null()), requests, "request_id")
    by_entity = _asof(ordered.filter(pl.col("request_id").is_null()), requests, "entity")
    both = pl.concat([by_id, by_entity]).sort("_i")
    return both.select(
        "name",
        "value",
        "at",
        pl.col("_version").alias("version"),
        pl.coalesce("request_id", "_rid").alias("request_id"),
        pl.coalesce("entity", "_entity").alias("entity"),
    )


def _distinct(events: Sequence[KpiEvent]) -> list[KpiEvent]:
    """The events as the store keeps them: of those sharing an event_id, the last one, in its place."""
    keyed = {e.event_id: i for i, e in enumerate(events) if e.event_id is not None}
    return [e for i, e in enumerate(events) if e.event_id is None or keyed[e.event_id] == i]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Kpis:
    """KPI events of the models a server serves, attributed to versions from what it captured."""

    def __init__(self, store: KpiStore, reader: CaptureReader | None) -> None:
        """``reader`` is None when the server captures nothing (every event is then unattributed)."""
        self.store = store
        self._reader = reader

    def put(self, name: str, events: Sequence[KpiEvent]) -> KpiCounts:
        """Store the events (all or none), then count those that name no captured row as of now; blocking."""
        kept = _distinct(events)
        stored = self.store.put(name, kept)
        return KpiCounts(stored=stored, unattributed=self.unattributed(name, kept))

    def unattributed(self, name: str, events: Sequence[KpiEvent]) -> int | None:
        """How many of ``events`` name no written captured row of ``name`` (shadow rows do not count); None when
        the segments hold more than UNMATCHED_SCAN_ROWS rows."""
        if self._reader is None:
            return len(events)
        requests = {(e.request_id, None) for e in events if e.request_id is not None}
        entities = {e.entity for e in events if e.entity is not None}
        found = self._reader.matched(name, requests, entities, UNMATCHED_SCAN_ROWS, skip_arm=_SHADOW)
        if found is None:
            return None
        return sum(
            (e.request_id, None) not in found.requests if e.request_id is not None else e.entity not in found.entities
            for e in events
        )

    def attributed(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        captured: pl.DataFrame | None = None,
    ) -> Attributed:
        """The events of ``name`` attributed to its requests captured in ``[since, until)``; blocking.

        With a window, an event is attributed among the window's requests only, and an event none of them claims
        is kept (unattributed) when its ``at`` lies in the window: events of requests outside it are not this
        window's. ``captured``: the window's captured rows (every version) already read by the caller, attributed
        to instead of reading the segments' key columns again.
        """
        requests = self._captured(name, since, until) if captured is None else captured
        frame = attribute(self.store.frame(name), requests)
        if since is not None or until is not None:
            inside = pl.lit(value=True)
            if since is not None:
                inside &= pl.col("at") >= since
            if until is not None:
                inside &= pl.col("at") < until
            frame = frame.filter(pl.col("version").is_not_null() | inside)
        counts = frame.group_by("name").agg(pl.col("version").null_count().alias("n")).sort("name")
        return Attributed(frame, dict(zip(counts["name"].to_list(), counts["n"].to_list(), strict=True)))

    def summary(self, name: str, *, since: datetime | None = None, until: datetime | None = None) -> KpiSummary:
        """Per KPI name and version: events, sum, mean per event; and each KPI's unattributed events; blocking."""
        found = self.attributed(name, since=since, until=until)
        per = (
            found.frame.filter(pl.col("version").is_not_null())
            .group_by("name", "version")
            .agg(pl.len().alias("events"), pl.col("value").sum().alias("sum"))
            .sort("name", "version")
        )
        versions: dict[str, list[KpiVersion]] = {}
        for kpi, version, events, total in per.iter_rows():
            versions.setdefault(kpi, []).append(
                KpiVersion(version=version, events=events, sum=_finite(total), mean=_finite(total / events))
            )
        kpis = [KpiTotals(kpi, n, versions.get(kpi, [])) for kpi, n in found.unattributed.items()]
        return KpiSummary(model=name, since=since, until=until, kpis=kpis)

    def _captured(self, name: str, since: datetime | None, until: datetime | None) -> pl.DataFrame:
        """The key columns of the requests captured in ``[since, until)`` (only those columns are read)."""
        tables = []
        if self._reader is not None:
            tables = list(self._reader.columns(self._reader.segments(name, since=since, until=until), _CAPTURED))
        table = pa.concat_tables(tables) if tables else FIXED.empty_table().select(_CAPTURED)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)  # a Table always becomes a DataFrame
        if since is not None:
            frame = frame.filter(pl.col("ts") >= since)
        if until is not None:
            frame = frame.filter(pl.col("ts") < until)
        return frame
