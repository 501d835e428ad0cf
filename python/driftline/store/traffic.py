"""Per-version request, error and latency counts by minute: each process adds what it counted, summed on read.

An experiment compares its arms on error rate and p99 latency and checks the sample ratio of the assignment counts,
over [start, now), across every worker process and restart. Captures cannot give that (they are sampled, and a
failed request is not captured); the serving counters (``ModelStats``) are per process since start. So each
process adds its counts here per (model, version, routing policy, minute) every few seconds
(``serving/traffic.py``), and readers sum the minutes in [since, until). The policy is the tag of the routing policy
that chose the version (:func:`driftline.serving.routing.policy_tag`; 0: the request named its version), so an
experiment reads exactly the requests its own policy routed, also in the minute it started in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, NamedTuple

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from driftline.store.db import Database

__all__ = [
    "LATENCY_BOUNDS",
    "RETENTION",
    "VERSION_ROW",
    "ProcessUsage",
    "TrafficRow",
    "TrafficStore",
    "TrafficTotals",
    "minute_of",
]

# Geometric bucket upper bounds (seconds) from 50 µs to 60 s, ratio 1.05: a quantile read from them is within 5%
# of the true value anywhere in that range, in 290 buckets (the last count is past 60 s).
_FIRST_S, _RATIO, _LAST_S = 50e-6, 1.05, 60.0
LATENCY_BOUNDS: Final[tuple[float, ...]] = tuple(
    _FIRST_S * _RATIO**k for k in range(math.ceil(math.log(_LAST_S / _FIRST_S) / math.log(_RATIO)) + 1)
)
#: Rows older than this are deleted when a process saves (the table stays bounded).
RETENTION: Final = timedelta(days=30)
_SECONDS_PER_MINUTE: Final = 60
#: The policy of the row that carries what a version did rather than what requests it was sent (rows and batches
#: executed, the queue depth): requests 0, so every read by policy leaves it out.
VERSION_ROW: Final = -1


@dataclass(frozen=True, slots=True)
class TrafficTotals:
    """One version's counts over a time range."""

    requests: int  # answered + failed
    errors: int
    latency_counts: list[int]  # len(LATENCY_BOUNDS) + 1 (the last: past the last bound), successes only


class TrafficRow(NamedTuple):
    """What one process counted for one (model, version, policy, minute) since its last save."""

    model: str
    version: int
    policy: int  # the routing policy's tag; 0: the request named a version or an alias
    minute: int  # minutes since the epoch, UTC
    requests: int
    errors: int
    latency: dict[int, int]  # bucket index -> count, non-zero buckets only
    statuses: dict[int, int] | None = None  # HTTP status -> failed requests (None: none failed)
    slow: int = 0  # successes slower than the model's SLO latency threshold then
    rows: int = 0  # VERSION_ROW only: rows and batches executed, the largest queue depth sampled
    batches: int = 0
    queue_depth_max: int = 0


class ProcessUsage(NamedTuple):
    """What one process used in one minute since its last save: CPU seconds, and its resident memory now."""

    minute: int
    cpu_s: float
    rss_bytes: int


_decode_latency = msgspec.json.Decoder(dict[int, int])


def _merged(before: str | None, grown: dict[int, int]) -> str:
    """A stored JSON object of counts with ``grown`` added, as JSON."""
    counts = dict(grown)
    if before is not None:
        for key, count in _decode_latency.decode(before).items():
            counts[key] = counts.get(key, 0) + count
    return msgspec.json.encode(dict(sorted(counts.items()))).decode()


def _minute_at_or_after(at: datetime) -> int:
    """The first minute that starts at or after ``at`` (a minute counts in [since, until) when its start does)."""
    return math.ceil(at.timestamp() / _SECONDS_PER_MINUTE)


class TrafficStore:
    """Reads and writes the traffic table (migration 8, extended by 10 in :mod:`driftline.store.db`) and the
    per-process minutes beside it (:mod:`driftline.ops.history` reads both)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    def add(self, process: str, rows: Iterable[TrafficRow], usage: ProcessUsage | None = None) -> None:
        """Add ``rows`` (and ``usage``) to what ``process`` stored before (one transaction), and delete rows past
        :data:`RETENTION`."""
        rows = list(rows)
        if not rows and usage is None:
            return
        oldest = int(time.time() - RETENTION.total_seconds()) // _SECONDS_PER_MINUTE
        with self.db.transaction() as conn:
            for r in rows:
                key = (process, r.model, r.version, r.policy, r.minute)
                before = conn.execute(
                    "SELECT latency, statuses FROM traffic WHERE process = ? AND model = ? AND version = ?"
                    " AND policy = ? AND minute = ?",
                    key,
                ).fetchone()
                latency = _merged(None if before is None else before[0], r.latency)
                statuses = _merged(None if before is None else before[1], r.statuses or {})
                conn.execute(
                    "INSERT INTO traffic (process, model, version, policy, minute, requests, errors, latency,"
                    " statuses, slow, row_count, batches, queue_depth_max)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (process, model, version, policy, minute) DO UPDATE"
                    " SET requests = traffic.requests + excluded.requests, errors = traffic.errors + excluded.errors,"
                    " latency = excluded.latency, statuses = excluded.statuses, slow = traffic.slow + excluded.slow,"
                    " row_count = traffic.row_count + excluded.row_count, batches = traffic.batches + excluded.batches,"
                    " queue_depth_max = MAX(traffic.queue_depth_max, excluded.queue_depth_max)",
                    (*key, r.requests, r.errors, latency, statuses, r.slow, r.rows, r.batches, r.queue_depth_max),
                )
            if usage is not None:
                conn.execute(
                    "INSERT INTO process_minutes (process, minute, cpu_s, rss_bytes) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (process, minute) DO UPDATE SET cpu_s = process_minutes.cpu_s + excluded.cpu_s,"
                    " rss_bytes = excluded.rss_bytes",
                    (process, *usage),
                )
            conn.execute("DELETE FROM traffic WHERE minute < ?", (oldest,))
            conn.execute("DELETE FROM process_minutes WHERE minute < ?", (oldest,))

    def totals(
        self,
        model: str,
        since: datetime,
        until: datetime | None = None,
        routed: bool | None = True,
        policy: int | None = None,
    ) -> dict[int, TrafficTotals]:
        """Each version's counts summed over every process, for the minutes that start in [since, until)
        (``until`` None: up to now); ``routed`` True: only requests a routing policy sent (named neither a
        version nor an alias), False: only the others, None: all.

        ``policy`` (a tag): only the requests that policy routed, over the minutes that overlap [since, until):
        the policy tells them from the requests before it was set, so the minute ``since`` falls in counts too.
        """
        return {v: t for _, v, t in self._sums(model, since, until, routed, None, policy)}

    def series(
        self,
        model: str,
        since: datetime,
        until: datetime,
        step: timedelta,
        routed: bool | None = True,
        policy: int | None = None,
    ) -> list[tuple[datetime, dict[int, TrafficTotals]]]:
        """:meth:`totals` per step from ``since`` (each step's start with its versions' counts; steps without
        requests are left out). ``step`` is a whole number of minutes, at least one."""
        minutes = int(step.total_seconds()) // _SECONDS_PER_MINUTE
        if minutes < 1 or step.total_seconds() % _SECONDS_PER_MINUTE:
            raise ValueError(f"step must be a whole number of minutes, got {step}")
        out: dict[int, dict[int, TrafficTotals]] = {}
        for index, version, totals in self._sums(model, since, until, routed, minutes, policy):
            out.setdefault(index, {})[version] = totals
        return [(since + step * index, out[index]) for index in sorted(out)]

    def _sums(
        self,
        model: str,
        since: datetime,
        until: datetime | None,
        routed: bool | None,
        step_minutes: int | None,
        policy: int | None = None,
    ) -> list[tuple[int, int, TrafficTotals]]:
        """(step index, version, totals), step index 0 when ``step_minutes`` is None."""
        first = minute_of(since.timestamp()) if policy is not None else _minute_at_or_after(since)
        where = "model = ? AND minute >= ?"
        params: list[object] = [model, first]
        if until is not None:
            where += " AND minute < ?"
            params.append(_minute_at_or_after(until))
        if policy is not None:
            where += " AND policy = ?"
            params.append(policy)
        elif routed is None:
            where += " AND policy >= 0"  # not the VERSION_ROW
        else:
            where += " AND policy > 0" if routed else " AND policy = 0"
        # Steps count from `since` itself, so a step's start is since + k * step.
        step = (
            "0"
            if step_minutes is None
            else self.db.integer_part(f"(minute * 60 - {since.timestamp()!r}) / {step_minutes * 60}")
        )
        counts = self.db.query(
            f"SELECT {step} AS step, version, SUM(requests) AS requests, SUM(errors) AS errors"  # noqa: S608
            f" FROM traffic WHERE {where} GROUP BY step, version",
            tuple(params),
        )
        buckets = self.db.query(
            f"SELECT {step} AS step, version, CAST(j.key AS INTEGER) AS bucket,"  # noqa: S608
            f" SUM(j.value) AS n FROM traffic, json_each(traffic.latency) AS j WHERE {where}"
            " GROUP BY step, version, bucket",
            tuple(params),
        )
        latency: dict[tuple[int, int], list[int]] = {}
        for b in buckets:
            hist = latency.setdefault((b["step"], b["version"]), [0] * (len(LATENCY_BOUNDS) + 1))
            hist[b["bucket"]] = b["n"]
        empty = [0] * (len(LATENCY_BOUNDS) + 1)
        out = [
            (
                c["step"],
                c["version"],
                TrafficTotals(c["requests"], c["errors"], latency.get((c["step"], c["version"]), list(empty))),
            )
            for c in counts
        ]
        return sorted(out, key=lambda t: (t[0], t[1]))


def minute_of(ts: float) -> int:
    """The minute (since the epoch) a time in seconds since the epoch falls in."""
    return int(ts // _SECONDS_PER_MINUTE)
