"""The merge of several workers' metrics, on the figures real collectors expose, and the fan-out over real unix
sockets in one directory (two WorkerMetrics in this process stand for two workers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftline.errors import ConfigError
from driftline.repository import Repository
from driftline.server.collectors import LifecycleCollector, ServingCollector, WorkerProcessCollector
from driftline.server.worker_metrics import SHARED_GAUGES, WorkerMetrics, final_counters, merge, snapshot
from driftline.serving.routing import ModelRoutes
from driftline.serving.stats import RequestErrors
from driftline.serving.table import ModelTable


class Worker:
    """One worker's real collectors over its own table."""

    def __init__(self, table: ModelTable, index: str) -> None:
        self.table = table
        self.errors = RequestErrors()
        self.registry = CollectorRegistry()
        self.registry.register(ServingCollector(table, self.errors))
        self.registry.register(LifecycleCollector(table))
        self.registry.register(WorkerProcessCollector(index))
        self.inflight = Gauge("driftline_test_inflight", "A per-worker gauge", registry=self.registry)
        self.index = index

    def answer(self, count: int, seconds: float) -> None:
        stats = self.table.get("iris", "1").stats
        for _ in range(count):
            stats.record_request(True, int(seconds * 1e9), 0)

    def triton(self):
        return [m.stats.as_triton(m.name, str(m.version)) for vs in self.table.loaded().values() for m in vs.values()]

    def snapshot(self):
        return snapshot(self.registry, self.index, f"token-{self.index}")


@pytest.fixture
async def two(repo: Path):
    loop = asyncio.get_running_loop()
    tables = [ModelTable(Repository(repo), loop) for _ in range(2)]
    for t in tables:
        await t.load_all()
        t.set_routes("iris", ModelRoutes(aliases={"champion": 2}, default_alias="champion"))
    yield [Worker(t, str(i)) for i, t in enumerate(tables)]
    for t in tables:
        await t.close()


def samples(metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for m in metrics for s in m.samples if s.name == name}


def success(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"model": "iris", "version": "1", "outcome": "success", "code": "200", **labels}.items()))


async def test_counters_and_histograms_are_summed_per_label_set(two):
    a, b = two
    a.answer(3, 0.002)
    b.answer(4, 0.02)
    b.errors.record("iris", {1, 2}, "1", 400)
    merged = merge([a.snapshot(), b.snapshot()])
    requests = samples(merged, "driftline_requests_total")
    assert requests[success({})] == 7
    assert requests[success({"outcome": "failure", "code": "400"})] == 1
    count = samples(merged, "driftline_request_latency_seconds_count")
    assert count[(("model", "iris"), ("version", "1"))] == 7
    total = samples(merged, "driftline_request_latency_seconds_sum")[(("model", "iris"), ("version", "1"))]
    assert total == pytest.approx(3 * 0.002 + 4 * 0.02)
    buckets = samples(merged, "driftline_request_latency_seconds_bucket")
    key = (("le", "0.0025"), ("model", "iris"), ("version", "1"))
    assert buckets[key] == 3  # a's three answers; b's were slower
    assert buckets[(("le", "+Inf"), ("model", "iris"), ("version", "1"))] == 7


async def test_gauges_are_summed_unless_shared_and_process_figures_stay_per_worker(two):
    a, b = two
    a.inflight.set(2)
    b.inflight.set(5)
    merged = merge([a.snapshot(), b.snapshot()])
    assert samples(merged, "driftline_test_inflight") == {(): 7}
    assert "driftline_alias_version" in SHARED_GAUGES
    assert samples(merged, "driftline_alias_version") == {(("alias", "champion"), ("model", "iris")): 2}
    rss = samples(merged, "process_resident_memory_bytes")
    assert sorted(rss) == [(("worker", "0"),), (("worker", "1"),)]
    assert all(v > 0 for v in rss.values())
    # The merge renders as exposition text Prometheus's own parser reads back.
    text = generate_latest(Rendered(merged)).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"driftline_requests", "driftline_request_latency_seconds", "process_cpu_seconds"} <= names


class Rendered:
    def __init__(self, metrics) -> None:
        self.metrics = metrics

    def collect(self):
        return iter(self.metrics)


async def test_an_exiting_worker_keeps_its_last_counters_and_drops_its_gauges(two):
    a, _ = two
    a.answer(6, 0.001)
    a.inflight.set(3)
    at_shutdown = a.snapshot()
    await a.table.close()  # the table empties itself before it drains: later snapshots see no model
    final = final_counters([at_shutdown, a.snapshot()])
    metrics = merge([final])
    assert samples(metrics, "driftline_requests_total")[success({})] == 6
    assert samples(metrics, "driftline_request_latency_seconds_count")[(("model", "iris"), ("version", "1"))] == 6
    assert samples(metrics, "driftline_test_inflight") == {}
    assert samples(metrics, "process_cpu_seconds_total") == {}


async def test_the_fan_out_over_sockets_counts_an_exited_worker_once(two, tmp_path):
    a, b = two
    first, second = WorkerMetrics(tmp_path, a.registry), WorkerMetrics(tmp_path, b.registry)
    assert (first.worker, second.worker) == ("0", "1")
    await first.start(a.triton)
    await second.start(b.triton)
    a.answer(2, 0.001)
    b.answer(5, 0.001)
    a.table.get("iris", "1").stats.record_batch(1, 1, 10, 20, 30)
    b.table.get("iris", "1").stats.record_batch(4, 4, 10, 20, 30)

    def requests(text: bytes) -> float:
        families = text_string_to_metric_families(text.decode())
        return sum(s.value for f in families for s in f.samples if s.name == "driftline_requests_total")

    def missing(text: bytes) -> float:
        families = text_string_to_metric_families(text.decode())
        return next(s.value for f in families for s in f.samples if s.name == "driftline_metrics_workers_missing")

    assert requests(await first.scrape()) == requests(await second.scrape()) == 7
    # Triton's statistics of one version, summed over both workers: counts, nanoseconds and batch sizes.
    (mine,) = [e for e in a.triton() if (e["name"], e["version"]) == ("iris", "1")]
    (summed,) = await first.triton_stats([mine])
    assert summed["inference_stats"]["success"] == {"count": 7, "ns": 7 * 1_000_000}
    assert summed["inference_stats"]["fail"] == {"count": 0, "ns": 0}
    assert [s["batch_size"] for s in summed["batch_stats"]] == [1, 4]
    assert (summed["inference_count"], summed["execution_count"]) == (5, 2)
    second.keep_final()
    await second.close()  # writes its final counters, then stops answering
    assert len(list(tmp_path.glob("exited-*.msgpack"))) == 1
    text = await first.scrape()
    assert (requests(text), missing(text)) == (7, 0)
    # A replacement takes the freed slot and starts from zero; the exited counts stay in the sum.
    third = WorkerMetrics(tmp_path, CollectorRegistry())
    assert third.worker == "1"
    await third.start(list)
    assert requests(await first.scrape()) == 7
    # A sibling whose socket is there but does not answer is left out and counted as missing.
    await third.close()
    (tmp_path / "worker-1.sock").touch()
    text = await first.scrape()
    assert (requests(text), missing(text)) == (7, 1)
    await first.close()


def test_a_metrics_dir_that_is_not_there_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"http.metrics_dir .*missing"):
        WorkerMetrics(tmp_path / "missing", CollectorRegistry())


async def test_a_socket_path_too_long_to_listen_on_is_a_config_error(tmp_path):
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    workers = WorkerMetrics(deep, CollectorRegistry())
    with pytest.raises(ConfigError, match="cannot listen on"):
        await workers.start(list)
    await workers.close()
