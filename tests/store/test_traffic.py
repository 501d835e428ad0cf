"""Traffic counts in the store: processes add per minute, reads sum every process for the minutes starting in
[since, until), by version, routed or not, whole or in steps; old rows are deleted when a process saves."""

from __future__ import annotations

import itertools
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftline.store.db import open_database
from driftline.store.traffic import LATENCY_BOUNDS, RETENTION, TrafficRow, TrafficStore

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
M0 = int(T0.timestamp()) // 60


def _row(version: int, minute: int, requests: int, errors: int = 0, *, routed: bool = True, **buckets: int):
    latency = {int(k[1:]): v for k, v in buckets.items()}  # b5=2: bucket 5 holds 2
    return TrafficRow("iris", version, 1 if routed else 0, M0 + minute, requests, errors, latency)


@pytest.fixture
def store(tmp_path: Path, store_at):
    db = open_database(store_at("t.db"))
    yield TrafficStore(db)
    db.close()


def test_bounds_are_geometric_from_50us_past_60s():
    assert LATENCY_BOUNDS[0] == pytest.approx(50e-6)
    assert LATENCY_BOUNDS[-2] < 60.0 <= LATENCY_BOUNDS[-1]
    ratios = {round(b / a, 12) for a, b in itertools.pairwise(LATENCY_BOUNDS)}
    assert ratios == {1.05}
    assert 285 <= len(LATENCY_BOUNDS) <= 295


def test_adds_sum_over_processes_and_repeated_adds(store):
    store.add("a", [_row(1, 0, 3, 1, b5=2), _row(2, 0, 1, b7=1)])
    store.add("a", [_row(1, 0, 2, b5=1, b9=1)])  # the same key again: added, buckets merged
    store.add("b", [_row(1, 1, 4, 2, b5=2)])
    store.add("b", [])
    totals = store.totals("iris", T0)
    assert sorted(totals) == [1, 2]
    one = totals[1]
    assert (one.requests, one.errors) == (9, 3)
    assert len(one.latency_counts) == len(LATENCY_BOUNDS) + 1
    assert {i: n for i, n in enumerate(one.latency_counts) if n} == {5: 5, 9: 1}
    assert (totals[2].requests, totals[2].latency_counts[7]) == (1, 1)
    assert store.totals("mlp", T0) == {}


def test_routed_or_not(store):
    store.add("a", [_row(1, 0, 5), _row(1, 0, 2, routed=False), _row(2, 0, 3, routed=False)])
    assert {v: t.requests for v, t in store.totals("iris", T0).items()} == {1: 5}
    assert {v: t.requests for v, t in store.totals("iris", T0, routed=False).items()} == {1: 2, 2: 3}
    assert {v: t.requests for v, t in store.totals("iris", T0, routed=None).items()} == {1: 7, 2: 3}


def test_since_and_until_cut_at_minutes(store):
    store.add("a", [_row(1, m, 10**m) for m in range(4)])  # minute m holds 10^m requests

    def requests(since: datetime, until: datetime | None = None) -> int:
        return sum(t.requests for t in store.totals("iris", since, until).values())

    assert requests(T0) == 1111
    assert requests(T0, T0 + timedelta(minutes=2)) == 11
    # A minute counts when it starts in [since, until): a since inside minute 0 leaves minute 0 out, an until
    # inside minute 2 keeps minute 2.
    assert requests(T0 + timedelta(seconds=30), T0 + timedelta(minutes=2, seconds=1)) == 110
    assert requests(T0 + timedelta(minutes=1)) == 1110
    assert requests(T0 + timedelta(minutes=4)) == 0


def test_series_in_steps_from_since(store):
    store.add("a", [_row(1, 0, 1), _row(1, 1, 2), _row(2, 1, 5), _row(1, 3, 4), _row(1, 4, 8)])
    series = store.series("iris", T0, T0 + timedelta(minutes=5), timedelta(minutes=2))
    assert [(at, {v: t.requests for v, t in by.items()}) for at, by in series] == [
        (T0, {1: 3, 2: 5}),
        (T0 + timedelta(minutes=2), {1: 4}),
        (T0 + timedelta(minutes=4), {1: 8}),
    ]
    with pytest.raises(ValueError, match="whole number of minutes"):
        store.series("iris", T0, T0 + timedelta(minutes=5), timedelta(seconds=90))


def test_rows_past_retention_are_deleted_at_save(store):
    now = int(time.time()) // 60
    old = now - math.ceil(RETENTION.total_seconds() / 60) - 1
    store.add("a", [TrafficRow("iris", 1, 1, old, 7, 0, {}), TrafficRow("iris", 1, 1, now, 1, 0, {})])
    left = store.db.query("SELECT minute, requests FROM traffic")
    assert [(r["minute"], r["requests"]) for r in left] == [(now, 1)]


def test_a_policy_reads_its_own_requests_from_the_minute_it_started_in(store):
    """An experiment starts mid-minute: the requests its policy (tag 7) routed in that minute count, those another
    policy (tag 3, before it) routed in the same minute do not; without a policy only whole minutes count."""
    tagged = [
        TrafficRow("iris", 1, 3, M0, 50, 0, {}),  # before the experiment: the old policy
        TrafficRow("iris", 1, 7, M0, 20, 0, {}),  # after it started, the same minute
        TrafficRow("iris", 2, 7, M0, 10, 1, {}),
        TrafficRow("iris", 2, 7, M0 + 1, 5, 0, {}),
        TrafficRow("iris", 2, 0, M0 + 1, 99, 0, {}),  # named its version: no policy's
    ]
    store.add("a", tagged)
    since = T0 + timedelta(seconds=30)
    totals = store.totals("iris", since, policy=7)
    assert {v: (t.requests, t.errors) for v, t in totals.items()} == {1: (20, 0), 2: (15, 1)}
    assert {v: t.requests for v, t in store.totals("iris", since).items()} == {2: 5}
    assert {v: t.requests for v, t in store.totals("iris", since, routed=False).items()} == {2: 99}
