"""The minute history on a real SQLite store: two processes count through :class:`Traffic` and save, the reads
sum them per (model, version, minute) with failures by status, quantiles, rows, batches and the queue depth max,
and each process's CPU and memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from driftline.ops.history import bucket_quantile, version_minutes, worker_minutes
from driftline.serving.traffic import Traffic, VersionSample
from driftline.store.db import Database, open_database
from driftline.store.traffic import LATENCY_BOUNDS, RETENTION, TrafficRow, TrafficStore, minute_of


@pytest.fixture
def db(tmp_path: Path, store_at):
    db = open_database(store_at("h.db"))
    yield db
    db.close()


def _span() -> tuple[int, int]:
    now = minute_of(time.time())
    return now - 5, now + 2


def test_two_processes_sum_per_version_minute(db: Database) -> None:
    store = TrafficStore(db)
    depth = {"a": 3, "b": 7}
    done = {"a": (0, 0), "b": (0, 0)}

    def sampler(name: str):
        return lambda: [VersionSample("iris", 1, *done[name], depth[name])]

    a = Traffic(store, "a", threshold_of=lambda _m: 0.05, versions=sampler("a"))
    b = Traffic(store, "b", threshold_of=lambda _m: 0.05, versions=sampler("b"))
    for _ in range(10):
        a.record("iris", 1, 0, 0.001)
    a.record("iris", 1, 3, 0.2)  # another policy, slow
    a.record("iris", 1, 0, None, 504)
    b.record("iris", 1, 0, None, 504)
    b.record("iris", 1, 0, None, 500)
    b.record("iris", 2, 0, 0.01)
    done["a"], done["b"] = (12, 4), (5, 5)
    a.flush()
    b.flush()
    since, until = _span()
    minutes = version_minutes(db, since, until)
    by_version: dict[int, list] = {}
    for m in minutes:
        by_version.setdefault(m.version, []).append(m)
    assert sorted(by_version) == [1, 2]
    v1 = by_version[1]
    assert sum(m.requests for m in v1) == 14
    errors: dict[int, int] = {}
    for m in v1:
        for status, n in m.errors.items():
            errors[status] = errors.get(status, 0) + n
    assert errors == {500: 1, 504: 2}
    assert sum(m.rows for m in v1) == 17
    assert sum(m.batches for m in v1) == 9
    assert max(m.queue_depth_max for m in v1) == 7  # the max over the workers, not the sum
    busiest = max(v1, key=lambda m: m.requests)
    assert busiest.p50_s is not None
    assert busiest.p50_s == LATENCY_BOUNDS[_bucket(0.001)]
    assert busiest.p99_s == LATENCY_BOUNDS[_bucket(0.2)]
    assert [m.requests for m in by_version[2]] == [1]
    assert version_minutes(db, since, until, model="other") == []
    # A second flush adds only what grew; the version's row counts from the counters' last save.
    a.record("iris", 1, 0, 0.001)
    done["a"] = (13, 5)
    a.flush()
    v1 = [m for m in version_minutes(db, since, until, "iris") if m.version == 1]
    assert sum(m.requests for m in v1) == 15
    assert sum(m.rows for m in v1) == 18
    assert sum(m.batches for m in v1) == 10
    assert sum(m.requests for m in version_minutes(db, since, until)) == 16


def _bucket(latency_s: float) -> int:
    from bisect import bisect_left

    return bisect_left(LATENCY_BOUNDS, latency_s)


def test_slo_counts_are_cumulative_across_flushes(db: Database) -> None:
    traffic = Traffic(TrafficStore(db), "p", threshold_of=lambda _m: 0.05)
    traffic.record("iris", 1, 0, 0.01)
    traffic.record("iris", 1, 0, 0.06)
    traffic.record("iris", 1, 0, None, 504)
    traffic.record("iris", 1, 0, None, 503)
    traffic.record("iris", 1, 0, None, 429)
    traffic.flush()
    traffic.record("iris", 2, 0, 0.07)
    counts = traffic.slo_counts()["iris"]
    assert (counts.requests, counts.errors, counts.slow) == (6, 2, 2)
    off = Traffic(TrafficStore(db), "q")  # SLO accounting off: nothing is slow
    off.record("iris", 1, 0, 100.0)
    assert off.slo_counts()["iris"].slow == 0


def test_worker_minutes_per_process(db: Database) -> None:
    store = TrafficStore(db)
    a, b = Traffic(store, "a"), Traffic(store, "b")
    sum(i * i for i in range(200_000))  # some CPU for a's first flush to charge
    a.flush()
    b.flush()
    a.flush()
    since, until = _span()
    rows = worker_minutes(db, since, until)
    assert {r.worker for r in rows} == {"a", "b"}
    assert all(r.rss_bytes > 10 * 2**20 for r in rows)  # a Python process with numpy loaded
    assert sum(r.cpu_s for r in rows if r.worker == "a") > 0


def test_retention_bounds_both_tables(db: Database) -> None:
    store = TrafficStore(db)
    old = minute_of(time.time() - RETENTION.total_seconds()) - 10
    store.add("x", [TrafficRow("iris", 1, 0, old, 5, 1, {}, {500: 1})])
    db.execute("INSERT INTO process_minutes VALUES ('x', ?, 1.0, 1)", (old,))
    Traffic(store, "y").flush()  # a save deletes what is past the retention
    assert version_minutes(db, old - 1, old + 1) == []
    assert worker_minutes(db, old - 1, old + 1) == []


def test_bucket_quantile() -> None:
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    assert bucket_quantile(counts, 0.5) is None
    counts[3], counts[10] = 99, 1
    assert bucket_quantile(counts, 0.5) == LATENCY_BOUNDS[3]
    assert bucket_quantile(counts, 0.99) == LATENCY_BOUNDS[3]
    assert bucket_quantile(counts, 0.999) == LATENCY_BOUNDS[10]
    counts[-1] = 1000  # past the last bound: reported at the last bound
    assert bucket_quantile(counts, 0.99) == LATENCY_BOUNDS[-1]


def test_a_failing_sampler_never_keeps_requests_from_being_saved(db: Database, caplog) -> None:
    def broken() -> list[VersionSample]:
        raise RuntimeError("table closed")

    traffic = Traffic(TrafficStore(db), "p", versions=broken)
    traffic.record("iris", 1, 0, None, 503)
    traffic.flush()
    since, until = _span()
    [minute] = version_minutes(db, since, until)
    assert (minute.requests, minute.errors, minute.rows) == (1, {503: 1}, 0)
    assert "sampling the loaded versions" in caplog.text
