"""The minute history the dashboard and the SLOs read: per version and per process, summed over processes.

One time-series store: the traffic table every process adds its counts to every few seconds
(:mod:`driftline.serving.traffic`), and the per-process minutes beside it, both bounded by
:data:`driftline.store.traffic.RETENTION`. A range is the minutes in [since_minute, until_minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftline.stats.quantiles import histogram_quantile
from driftline.store.traffic import LATENCY_BOUNDS, VERSION_ROW

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.store.db import Database

__all__ = [
    "SloTotals",
    "VersionMinute",
    "WorkerMinute",
    "bucket_quantile",
    "slo_totals",
    "version_minutes",
    "worker_minutes",
]


@dataclass(frozen=True, slots=True)
class VersionMinute:
    """One version's minute, summed over every process and routing policy."""

    model: str
    version: int
    minute: int  # minutes since the epoch, UTC (store.traffic.minute_of)
    requests: int  # answered + failed
    errors: dict[int, int]  # HTTP status -> count (4xx and 5xx answers)
    p50_s: float | None  # latency quantiles of the minute's successes (None: no successes)
    p99_s: float | None
    rows: int  # rows inferred
    batches: int  # batches executed
    queue_depth_max: int  # the largest queue depth seen in the minute (max over workers)


@dataclass(frozen=True, slots=True)
class WorkerMinute:
    """One process's minute."""

    worker: str  # the process's name as the traffic table knows it
    minute: int
    cpu_s: float  # CPU seconds the process used in the minute
    rss_bytes: int  # resident memory at the end of the minute


def bucket_quantile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile of a histogram over :data:`LATENCY_BOUNDS`, at the upper bound of the bucket it falls in
    (within 5% of the true value; past the last bound: the last bound). None for an empty histogram."""
    if not any(counts):  # no successes (a minute with failures only keeps no histogram)
        return None
    return min(histogram_quantile(LATENCY_BOUNDS, counts, q), LATENCY_BOUNDS[-1])


def version_minutes(
    db: Database, since_minute: int, until_minute: int, model: str | None = None
) -> list[VersionMinute]:
    """Every version's minutes in [since_minute, until_minute) (one model's, or all), sorted by (model, version,
    minute); a minute appears when some process stored a row for it."""
    where = "minute >= ? AND minute < ?"
    params: tuple[object, ...] = (since_minute, until_minute)
    if model is not None:
        where += " AND model = ?"
        params = (*params, model)
    sums = db.query(
        "SELECT model, version, minute, SUM(requests) AS requests, SUM(row_count) AS rows, SUM(batches) AS batches,"  # noqa: S608
        f" MAX(queue_depth_max) AS depth FROM traffic WHERE {where} GROUP BY model, version, minute",
        params,
    )
    errors: dict[tuple[str, int, int], dict[int, int]] = {}
    for r in db.query(
        "SELECT model, version, minute, CAST(j.key AS INTEGER) AS status, SUM(j.value) AS n"  # noqa: S608
        f" FROM traffic, json_each(traffic.statuses) AS j WHERE {where} GROUP BY model, version, minute, status",
        params,
    ):
        errors.setdefault((r["model"], r["version"], r["minute"]), {})[r["status"]] = r["n"]
    latency: dict[tuple[str, int, int], list[int]] = {}
    for r in db.query(
        "SELECT model, version, minute, CAST(j.key AS INTEGER) AS bucket, SUM(j.value) AS n"  # noqa: S608
        f" FROM traffic, json_each(traffic.latency) AS j WHERE {where} AND policy != {VERSION_ROW}"
        " GROUP BY model, version, minute, bucket",
        params,
    ):
        key = (r["model"], r["version"], r["minute"])
        latency.setdefault(key, [0] * (len(LATENCY_BOUNDS) + 1))[r["bucket"]] = r["n"]
    out = []
    for r in sums:
        key = (r["model"], r["version"], r["minute"])
        hist = latency.get(key, ())
        out.append(
            VersionMinute(
                model=key[0],
                version=key[1],
                minute=key[2],
                requests=r["requests"],
                errors=dict(sorted(errors.get(key, {}).items())),
                p50_s=bucket_quantile(hist, 0.5),
                p99_s=bucket_quantile(hist, 0.99),
                rows=r["rows"],
                batches=r["batches"],
                queue_depth_max=r["depth"],
            )
        )
    return sorted(out, key=lambda m: (m.model, m.version, m.minute))


def worker_minutes(db: Database, since_minute: int, until_minute: int) -> list[WorkerMinute]:
    """Every process's minutes in [since_minute, until_minute), sorted by (worker, minute)."""
    return [
        WorkerMinute(r["process"], r["minute"], r["cpu_s"], r["rss_bytes"])
        for r in db.query(
            "SELECT process, minute, cpu_s, rss_bytes FROM process_minutes WHERE minute >= ? AND minute < ?"
            " ORDER BY process, minute",
            (since_minute, until_minute),
        )
    ]


@dataclass(frozen=True, slots=True)
class SloTotals:
    """What the SLOs count for one model over a range of minutes, summed over versions and processes."""

    requests: int
    errors: int  # answered with a 5xx
    slow: int  # answered successfully after more than the latency threshold


def slo_totals(db: Database, model: str, since_minute: int, until_minute: int) -> SloTotals:
    """One model's SLO counts in [since_minute, until_minute)."""
    params = (model, since_minute, until_minute)
    where = "model = ? AND minute >= ? AND minute < ?"
    counts = db.query(
        f"SELECT COALESCE(SUM(requests), 0) AS r, COALESCE(SUM(slow), 0) AS s FROM traffic WHERE {where}",  # noqa: S608
        params,
    )[0]
    errors = db.query(
        "SELECT COALESCE(SUM(j.value), 0) AS e FROM traffic, json_each(traffic.statuses) AS j"  # noqa: S608
        f" WHERE {where} AND CAST(j.key AS INTEGER) >= 500",
        params,
    )[0]
    return SloTotals(counts["r"], errors["e"], counts["s"])
