"""``GET /metrics``: Prometheus text exposition built at scrape time from the serving counters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.core import Metric

    from driftline.serving.stats import Histogram
    from driftline.serving.table import ModelTable

__all__ = ["ServingCollector", "metrics"]

LABELS = ["model", "version"]


def _histogram(name: str, doc: str) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=LABELS)


def _add(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    family.add_metric(labels, hist.cumulative(), hist.total)


class ServingCollector(Collector):
    """Reads every loaded model version's counters when Prometheus scrapes; nothing is paid per request."""

    def __init__(self, table: ModelTable) -> None:
        """Collect from this table."""
        self._table = table

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        requests = CounterMetricFamily("driftline_requests", "Inference requests answered", labels=[*LABELS, "outcome"])
        inferences = CounterMetricFamily("driftline_inferences", "Rows inferred", labels=LABELS)
        executions = CounterMetricFamily("driftline_batches", "Batches executed", labels=LABELS)
        latency = _histogram("driftline_request_latency_seconds", "End-to-end request latency inside the server")
        queue = _histogram("driftline_queue_seconds", "Time a request waited in the batch queue")
        compute = _histogram("driftline_compute_seconds", "Time a batch spent in gather, model and split")
        batch = _histogram("driftline_batch_size", "Rows per executed batch")
        depth = GaugeMetricFamily("driftline_queue_depth", "Requests waiting in the batch queue", labels=LABELS)
        busy = GaugeMetricFamily("driftline_busy_instances", "Model instances running a batch", labels=LABELS)
        for name, versions in self._table.loaded().items():
            for version, model in versions.items():
                labels = [name, str(version)]
                s = model.stats
                requests.add_metric([*labels, "success"], s.success.count)
                requests.add_metric([*labels, "failure"], s.fail.count)
                inferences.add_metric(labels, s.inference_count)
                executions.add_metric(labels, s.execution_count)
                _add(latency, labels, s.latency)
                _add(queue, labels, s.queue_time)
                _add(compute, labels, s.compute_time)
                _add(batch, labels, s.batch_size)
                q = model.batcher.stats()
                depth.add_metric(labels, q.get("queued_requests", 0))
                busy.add_metric(labels, q.get("busy_instances", 0))
        yield from (requests, inferences, executions, latency, queue, compute, batch, depth, busy)


@get("/metrics", summary="Prometheus metrics", include_in_schema=True, tags=["operations"])
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format."""
    registry: CollectorRegistry = request.app.state.registry
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")
