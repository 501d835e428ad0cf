"""Traffic counting on a real model table and SQLite store (in process): requests per version under a canary,
routed or named, failures, the latency bucket, sums over processes and restarts, and flushes from another thread
while the loop counts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftline.errors import BadRequest, InferenceTimeout
from driftline.http.infer import infer_rest
from driftline.lifecycle.service import Lifecycle
from driftline.repository import Repository
from driftline.security.keys import KeyRing
from driftline.serving.dataplane import DataPlane
from driftline.serving.routing import Canary, RoutingPolicy
from driftline.serving.table import ModelTable
from driftline.serving.traffic import Traffic
from driftline.store.audit import AuditLog
from driftline.store.db import open_database
from driftline.store.deployments import DeploymentStore
from driftline.store.shadow_stats import ShadowStatsStore
from driftline.store.traffic import LATENCY_BOUNDS, TrafficStore

ROW = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def _since() -> datetime:
    """The start of the current minute (a minute counts when it starts in [since, until))."""
    return datetime.fromtimestamp(int(time.time() // 60) * 60, UTC)


class Serving:
    """A table, lifecycle and data plane that counts traffic, over one SQLite file."""

    def __init__(self, root: Path, db_path: Path) -> None:
        self.db = open_database(db_path)
        audit = AuditLog(self.db)
        self.table = ModelTable(Repository(root), asyncio.get_running_loop(), audit)
        self.lifecycle = Lifecycle(self.table, DeploymentStore(self.db), ShadowStatsStore(self.db), audit, "champion")
        self.traffic = Traffic(TrafficStore(self.db))
        self.plane = DataPlane(self.table, KeyRing(), require_key=False, traffic=self.traffic)

    async def start(self) -> Serving:
        self.lifecycle.seed()
        await self.table.load_all()
        self.lifecycle.refresh()
        return self

    async def infer(self, version: str | None = None, params: dict | None = None) -> str:
        body = dict(ROW, parameters=params) if params else ROW
        payload, _ = await infer_rest(self.plane, "iris", version, json.dumps(body).encode(), None, None, (), 1 << 20)
        return json.loads(payload)["model_version"]

    async def stop(self) -> None:
        await self.table.shadows.drain()
        await self.table.close()
        self.traffic.flush()
        self.db.close()


@pytest.fixture
async def serving(repo: Path, tmp_path: Path):
    s = await Serving(repo, tmp_path / "driftline.db").start()
    yield s
    await s.stop()


def _requests(totals) -> dict[int, int]:
    return {v: t.requests for v, t in sorted(totals.items())}


async def test_counts_per_version_under_a_canary_routed_and_named(serving):
    since = _since()
    await serving.lifecycle.set_routing("iris", RoutingPolicy(canary=Canary("1", 30.0)), "test")
    answered = [await serving.infer() for _ in range(60)]
    for version in ("1", "2", "1"):
        await serving.infer(version)
    await serving.lifecycle.set_alias("iris", "challenger", 1, "test")
    await serving.infer("challenger")
    routed = serving.traffic.totals("iris", since)
    assert _requests(routed) == {1: answered.count("1"), 2: answered.count("2")}
    assert 0 < answered.count("1") < 60
    assert _requests(serving.traffic.totals("iris", since, routed=False)) == {1: 3, 2: 1}
    assert _requests(serving.traffic.totals("iris", since, routed=None)) == {
        1: answered.count("1") + 3,
        2: answered.count("2") + 1,
    }
    for totals in routed.values():
        assert totals.errors == 0
        assert sum(totals.latency_counts) == totals.requests  # every success has its latency
    # Minutes that start at or after `until` are left out; the current one has started.
    assert serving.traffic.totals("iris", since, since) == {}
    assert serving.traffic.totals("iris", since + timedelta(minutes=1)) == {}


async def test_failures_count_as_errors_without_latency_and_bad_parameters_not_at_all(serving):
    since = _since()
    await serving.infer("1")
    for _ in range(3):  # 1 µs: always past by the time a worker takes the request from the queue
        with pytest.raises(InferenceTimeout):
            await serving.infer("1", {"timeout": 1})
    with pytest.raises(BadRequest, match="priority"):
        await serving.infer("1", {"priority": 99})
    (totals,) = serving.traffic.totals("iris", since, routed=False).values()
    assert (totals.requests, totals.errors, sum(totals.latency_counts)) == (4, 3, 1)


async def test_the_latency_bucket_of_a_known_latency(tmp_path: Path, store_at):
    db = open_database(store_at("t.db"))
    traffic = Traffic(TrafficStore(db))
    since = _since()
    for latency in (0.001, 0.001, 1e-6, 120.0):
        traffic.record("m", 1, 1, latency)
    counts = traffic.totals("m", since)[1].latency_counts
    ms = bisect_left(LATENCY_BOUNDS, 0.001)
    assert LATENCY_BOUNDS[ms - 1] < 0.001 <= LATENCY_BOUNDS[ms]
    assert {i: n for i, n in enumerate(counts) if n} == {0: 1, ms: 2, len(LATENCY_BOUNDS): 1}
    db.close()


async def test_two_processes_and_a_restart_sum(repo: Path, tmp_path: Path):
    since = _since()
    first, second = Serving(repo, tmp_path / "d.db"), Serving(repo, tmp_path / "d.db")
    await first.start()
    await second.start()
    for _ in range(3):
        await first.infer("2")
    await second.infer("2")
    first.traffic.flush()
    second.traffic.flush()
    assert _requests(second.traffic.totals("iris", since, routed=False)) == {2: 4}
    await first.stop()
    again = await Serving(repo, tmp_path / "d.db").start()  # a restart: a new process id, its own rows
    try:
        await again.infer("2")
        assert again.traffic.process != first.traffic.process
        assert _requests(again.traffic.totals("iris", since, routed=False)) == {2: 5}
    finally:
        await again.stop()
        await second.stop()


async def test_a_failed_save_is_retried_and_nothing_is_counted_twice(tmp_path: Path, store_at):
    db = open_database(store_at("t.db"))
    traffic = Traffic(TrafficStore(db))
    since = _since()
    traffic.record("m", 1, 1, 0.01)
    traffic.flush()
    traffic.record("m", 1, 1, None)
    closed = open_database(store_at("other.db"))
    closed.close()
    traffic.store = TrafficStore(closed)
    with pytest.raises(Exception, match="closed"):
        traffic.flush()
    traffic.store = TrafficStore(db)
    traffic.flush()
    traffic.flush()
    (totals,) = traffic.totals("m", since).values()
    assert (totals.requests, totals.errors) == (2, 1)
    db.close()


async def test_flushes_on_another_thread_lose_nothing(tmp_path: Path, store_at):
    db = open_database(store_at("t.db"))
    traffic = Traffic(TrafficStore(db))
    since = _since()
    done = threading.Event()

    def flush_until_done() -> None:
        for _ in range(10_000):  # bounded; ends once the loop stops counting
            traffic.flush()
            if done.wait(0.001):
                return

    flusher = threading.Thread(target=flush_until_done)
    flusher.start()
    try:
        for i in range(20_000):
            traffic.record("m", 1 + i % 2, 1, None if i % 7 == 0 else 0.002)
            if i % 500 == 0:
                await asyncio.sleep(0)
    finally:
        done.set()
        flusher.join(30)
    totals = traffic.totals("m", since)
    assert _requests(totals) == {1: 10_000, 2: 10_000}
    assert sum(t.errors for t in totals.values()) == len(range(0, 20_000, 7))
    assert sum(sum(t.latency_counts) for t in totals.values()) == 20_000 - len(range(0, 20_000, 7))
    db.close()
