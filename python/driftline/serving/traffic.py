"""This process's request, error and latency counts per (model, version, routing policy, minute), saved every few
seconds, with what the SLOs count (failures by status, successes over the latency threshold), each version's rows,
batches and queue depth, and the process's CPU and memory (the history :mod:`driftline.ops.history` reads).

:meth:`Traffic.record` runs on the event loop thread (the data plane calls it for every request that reached a
version's batcher, from either front end), so it takes no lock: a dict lookup, integer increments and a bisect.
The counters only ever grow; :meth:`Traffic.flush` (the background task, shutdown, or a reader on any thread)
hands the store what grew since the last save and never writes to a live counter, so a flush on another thread
cannot lose an increment. Flushes are serialized among themselves by a lock the hot path never takes.

The SLO counters exported on /metrics are the same counts, cumulative: what flushes retired plus the live keys,
read under the flush lock (so a key is never in both), nothing more paid per request.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from bisect import bisect_left
from typing import TYPE_CHECKING, NamedTuple

from driftline.store.traffic import LATENCY_BOUNDS, VERSION_ROW, ProcessUsage, TrafficRow, minute_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime, timedelta

    from driftline.store.traffic import TrafficStore, TrafficTotals

__all__ = ["SloCounts", "Traffic", "VersionSample"]

_BUCKETS = len(LATENCY_BOUNDS) + 1
_log = logging.getLogger(__name__)
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class VersionSample(NamedTuple):
    """What a loaded version did so far (its counters since it loaded) and its queue depth now."""

    model: str
    version: int
    rows: int
    batches: int
    queue_depth: int


class SloCounts(NamedTuple):
    """One model's SLO counts in this process since it started."""

    requests: int
    errors: int  # answered with a 5xx
    slow: int  # answered successfully after more than the latency threshold


class _Saved(NamedTuple):
    requests: int
    errors: int
    latency: list[int]
    statuses: dict[int, int]
    slow: int


class _Counts:
    """One key's live counters and what of them was saved."""

    __slots__ = ("errors", "latency", "requests", "saved", "slow", "statuses", "threshold_s")

    def __init__(self, threshold_s: float) -> None:
        self.requests = 0
        self.errors = 0
        self.slow = 0
        self.threshold_s = threshold_s  # the model's SLO latency threshold when the minute began (inf: none)
        self.latency = [0] * _BUCKETS
        self.statuses: dict[int, int] = {}
        self.saved = _Saved(0, 0, [0] * _BUCKETS, {}, 0)

    def slo(self) -> tuple[int, int, int]:
        """(requests, 5xx answers, slow successes) counted so far."""
        return self.requests, sum(n for s, n in self.statuses.copy().items() if s >= 500), self.slow


class Traffic:
    """The counters of one process (its own id in the store), and reads over every process's."""

    __slots__ = (
        "_counts",
        "_cpu_s",
        "_flush_lock",
        "_retired",
        "_sampled",
        "process",
        "store",
        "threshold_of",
        "versions",
    )

    def __init__(
        self,
        store: TrafficStore,
        process: str | None = None,
        threshold_of: Callable[[str], float] | None = None,
        versions: Callable[[], Iterable[VersionSample]] | None = None,
    ) -> None:
        """Count into memory, save to ``store`` under ``process`` (a fresh id: each worker and restart adds its own
        rows). ``threshold_of``: a model's SLO latency threshold in seconds (None: SLO accounting is off, nothing
        is slow); ``versions``: the loaded versions' counters, sampled at each flush (None: not sampled)."""
        self.store = store
        self.process = process or uuid.uuid4().hex
        self.threshold_of = threshold_of
        self.versions = versions
        self._counts: dict[tuple[str, int, int, int], _Counts] = {}
        self._flush_lock = threading.Lock()
        self._retired: dict[str, tuple[int, int, int]] = {}  # model -> SLO counts of the keys flushes dropped
        self._sampled: dict[tuple[str, int], tuple[int, int]] = {}  # (model, version) -> rows, batches last saved
        self._cpu_s = time.process_time()

    def record(self, model: str, version: int, policy: int, latency_s: float | None, status: int = 500) -> None:
        """Count one request that reached ``version``'s batcher: answered in ``latency_s`` seconds, or failed
        (None) with HTTP ``status``. ``policy``: the tag of the routing policy that chose the version (0: the
        request named it)."""
        key = (model, version, policy, int(time.time() // 60))
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = _Counts(self._threshold(model))
        counts.requests += 1
        if latency_s is None:
            counts.errors += 1
            statuses = counts.statuses
            statuses[status] = statuses.get(status, 0) + 1
        else:
            counts.latency[bisect_left(LATENCY_BOUNDS, latency_s)] += 1
            if latency_s > counts.threshold_s:
                counts.slow += 1

    def _threshold(self, model: str) -> float:
        """Once per key (a minute): the model's latency threshold now; inf when SLO accounting is off."""
        return math.inf if self.threshold_of is None else self.threshold_of(model)

    def slo_counts(self) -> dict[str, SloCounts]:
        """Each model's SLO counts since this process started (cumulative: Prometheus counters)."""
        with self._flush_lock:
            out = dict(self._retired)
            for key, counts in list(self._counts.items()):
                r, e, s = out.get(key[0], (0, 0, 0))
                live = counts.slo()
                out[key[0]] = (r + live[0], e + live[1], s + live[2])
        return {model: SloCounts(*c) for model, c in sorted(out.items())}

    def flush(self) -> None:
        """Add what was counted since the last flush to the store; a failed write is retried by the next flush.

        Keys of minutes before the last one are dropped once saved (recording goes on only in the current minute).
        """
        with self._flush_lock:
            current = minute_of(time.time())
            rows: list[TrafficRow] = []
            snapshots: list[tuple[_Counts, _Saved]] = []
            for key, counts in list(self._counts.items()):  # list(): one step, while the loop may add keys
                # Read requests last: a request being recorded right now may then be in neither or only in it,
                # never in the latency or errors alone; whatever is missed is in the next flush.
                latency, statuses, slow, errors = (
                    counts.latency.copy(),
                    counts.statuses.copy(),
                    counts.slow,
                    counts.errors,
                )
                now = _Saved(counts.requests, errors, latency, statuses, slow)
                saved = counts.saved
                if now == saved:
                    if key[3] < current - 1:
                        self._retire(key[0], counts)
                        del self._counts[key]
                    continue
                grown = {i: n - s for i, (n, s) in enumerate(zip(latency, saved.latency, strict=True)) if n != s}
                failed = {c: n - saved.statuses.get(c, 0) for c, n in statuses.items() if n != saved.statuses.get(c, 0)}
                model, version, policy, minute = key
                rows.append(
                    TrafficRow(
                        model,
                        version,
                        policy,
                        minute,
                        now.requests - saved.requests,
                        errors - saved.errors,
                        grown,
                        failed or None,
                        slow - saved.slow,
                    )
                )
                snapshots.append((counts, now))
            sampled = self._sample(current)
            rows.extend(row for row, _ in sampled)
            self.store.add(self.process, rows, self._usage(current))
            for counts, now in snapshots:
                counts.saved = now
            for row, seen in sampled:
                self._sampled[row.model, row.version] = seen

    def _retire(self, model: str, counts: _Counts) -> None:
        r, e, s = self._retired.get(model, (0, 0, 0))
        live = counts.slo()
        self._retired[model] = (r + live[0], e + live[1], s + live[2])

    def _sample(self, minute: int) -> list[tuple[TrafficRow, tuple[int, int]]]:
        """Each loaded version's rows and batches since the last flush and its queue depth now, as its
        VERSION_ROW of ``minute`` (a version reloaded since counts from zero again; what a version did after the
        last flush before it was unloaded, or before shutdown, is not sampled)."""
        if self.versions is None:
            return []
        try:
            samples = list(self.versions())
        except Exception:  # noqa: BLE001 - a failed sample must never keep the request counts from being saved
            _log.exception("sampling the loaded versions for the traffic history failed")
            return []
        out = []
        for v in samples:
            rows0, batches0 = self._sampled.get((v.model, v.version), (0, 0))
            rows = v.rows - rows0 if v.rows >= rows0 else v.rows
            batches = v.batches - batches0 if v.batches >= batches0 else v.batches
            if rows or batches or v.queue_depth:  # an idle version adds no row
                row = TrafficRow(
                    v.model, v.version, VERSION_ROW, minute, 0, 0, {}, None, 0, rows, batches, v.queue_depth
                )
                out.append((row, (v.rows, v.batches)))
            else:
                self._sampled[v.model, v.version] = (v.rows, v.batches)
        return out

    def _usage(self, minute: int) -> ProcessUsage:
        """The CPU seconds this process used since the last flush (charged to ``minute``) and its RSS now."""
        cpu = time.process_time()
        used, self._cpu_s = cpu - self._cpu_s, cpu
        try:
            with open("/proc/self/statm", "rb") as f:  # noqa: PTH123 - one small read, every few seconds
                rss = int(f.read().split()[1]) * _PAGE_BYTES
        except OSError:  # not Linux: no resident size to report
            rss = 0
        return ProcessUsage(minute, used, rss)

    def totals(
        self,
        model: str,
        since: datetime,
        until: datetime | None = None,
        routed: bool | None = True,
        policy: int | None = None,
    ) -> dict[int, TrafficTotals]:
        """Each version's counts over every process and restart (:meth:`TrafficStore.totals`); this process's
        latest counts are saved first, so they are included."""
        self.flush()
        return self.store.totals(model, since, until, routed, policy)

    def series(
        self,
        model: str,
        since: datetime,
        until: datetime,
        step: timedelta,
        routed: bool | None = True,
        policy: int | None = None,
    ) -> list[tuple[datetime, dict[int, TrafficTotals]]]:
        """:meth:`totals` per ``step`` from ``since`` (:meth:`TrafficStore.series`), this process's latest included."""
        self.flush()
        return self.store.series(model, since, until, step, routed, policy)
