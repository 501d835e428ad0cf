"""This process's request, error and latency counts per (model, version, routing policy, minute), saved every few
seconds.

:meth:`Traffic.record` runs on the event loop thread (the data plane calls it for every request that reached a
version's batcher, from either front end), so it takes no lock: a dict lookup, integer increments and a bisect.
The counters only ever grow; :meth:`Traffic.flush` (the background task, shutdown, or a reader on any thread)
hands the store what grew since the last save and never writes to a live counter, so a flush on another thread
cannot lose an increment. Flushes are serialized among themselves by a lock the hot path never takes.
"""

from __future__ import annotations

import threading
import time
import uuid
from bisect import bisect_left
from typing import TYPE_CHECKING

from driftline.store.traffic import LATENCY_BOUNDS, TrafficRow, minute_of

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from driftline.store.traffic import TrafficStore, TrafficTotals

__all__ = ["Traffic"]

_BUCKETS = len(LATENCY_BOUNDS) + 1


class _Counts:
    """One key's live counters and what of them was saved."""

    __slots__ = ("errors", "latency", "requests", "saved")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = [0] * _BUCKETS
        self.saved: tuple[int, int, list[int]] = (0, 0, [0] * _BUCKETS)


class Traffic:
    """The counters of one process (its own id in the store), and reads over every process's."""

    __slots__ = ("_counts", "_flush_lock", "process", "store")

    def __init__(self, store: TrafficStore, process: str | None = None) -> None:
        """Count into memory, save to ``store`` under ``process`` (a fresh id: each worker and restart adds its own
        rows)."""
        self.store = store
        self.process = process or uuid.uuid4().hex
        self._counts: dict[tuple[str, int, int, int], _Counts] = {}
        self._flush_lock = threading.Lock()

    def record(self, model: str, version: int, policy: int, latency_s: float | None) -> None:
        """Count one request that reached ``version``'s batcher: answered in ``latency_s`` seconds, or failed
        (None). ``policy``: the tag of the routing policy that chose the version (0: the request named it)."""
        key = (model, version, policy, int(time.time() // 60))
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = _Counts()
        counts.requests += 1
        if latency_s is None:
            counts.errors += 1
        else:
            counts.latency[bisect_left(LATENCY_BOUNDS, latency_s)] += 1

    def flush(self) -> None:
        """Add what was counted since the last flush to the store; a failed write is retried by the next flush.

        Keys of minutes before the last one are dropped once saved (recording goes on only in the current minute).
        """
        with self._flush_lock:
            current = minute_of(time.time())
            rows: list[TrafficRow] = []
            snapshots: list[tuple[_Counts, tuple[int, int, list[int]]]] = []
            for key, counts in list(self._counts.items()):  # list(): one step, while the loop may add keys
                # Read requests last: a request being recorded right now may then be in neither or only in it,
                # never in the latency or errors alone; whatever is missed is in the next flush.
                latency, errors = counts.latency.copy(), counts.errors
                requests = counts.requests
                saved_requests, saved_errors, saved_latency = counts.saved
                if requests == saved_requests and errors == saved_errors and latency == saved_latency:
                    if key[3] < current - 1:
                        del self._counts[key]
                    continue
                grown = {i: n - s for i, (n, s) in enumerate(zip(latency, saved_latency, strict=True)) if n != s}
                model, version, policy, minute = key
                rows.append(
                    TrafficRow(model, version, policy, minute, requests - saved_requests, errors - saved_errors, grown)
                )
                snapshots.append((counts, (requests, errors, latency)))
            self.store.add(self.process, rows)
            for counts, saved in snapshots:
                counts.saved = saved

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
