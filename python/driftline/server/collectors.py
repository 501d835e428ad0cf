"""Prometheus collectors: every figure is read from the live objects when Prometheus scrapes, none per request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Iterator

    from driftline.capture.service import CaptureService
    from driftline.feedback.alerts import QualityAlerts
    from driftline.registry.sync import RegistrySync
    from driftline.serving.stats import Histogram, RequestErrors
    from driftline.serving.table import ModelTable

__all__ = [
    "CaptureCollector",
    "LifecycleCollector",
    "QualityCollector",
    "RegistryCollector",
    "ServingCollector",
    "WorkerProcessCollector",
]

LABELS = ["model", "version"]


def _histogram(name: str, doc: str) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=LABELS)


def _add(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    family.add_metric(labels, hist.cumulative(), hist.total)


class ServingCollector(Collector):
    """Reads every loaded model version's counters when Prometheus scrapes; nothing is paid per request."""

    def __init__(self, table: ModelTable, errors: RequestErrors) -> None:
        """Collect from this table, and the error answers counted by the HTTP layer."""
        self._table = table
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        # Successes come from the batcher's per-version counters; every error answer (400 .. 504, before or after
        # the queue) is counted where it is answered, with its status as `code`.
        requests = CounterMetricFamily(
            "driftline_requests", "Inference requests answered", labels=[*LABELS, "outcome", "code"]
        )
        for (model_name, version_label, status), count in sorted(self._errors.counts.items()):
            requests.add_metric([model_name, version_label, "failure", str(status)], count)
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
                requests.add_metric([*labels, "success", "200"], s.success.count)
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


class LifecycleCollector(Collector):
    """Aliases, failed versions and the shadow comparison of every pair, as this process sees them.

    Shadow figures are counters, so agreement over any range is
    ``rate(driftline_shadow_agreeing_rows_total) / rate(driftline_shadow_compared_rows_total)``.
    """

    def __init__(self, table: ModelTable) -> None:
        """Collect from this table."""
        self._table = table

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        aliases = GaugeMetricFamily(
            "driftline_alias_version", "The version an alias points at", labels=["model", "alias"]
        )
        failed = GaugeMetricFamily(
            "driftline_failed_versions", "Versions of a model that failed to load and take no traffic", labels=["model"]
        )
        for name in sorted({*self._table.loaded(), *self._table.repository.model_names()}):
            for alias, version in sorted(self._table.routes(name).aliases.items()):
                aliases.add_metric([name, alias], version)
            failed.add_metric([name], len(self._table.failures(name)))
        pair_labels = ["model", "primary_version", "shadow_version"]

        def counter(name: str, doc: str, extra: list[str] | None = None) -> CounterMetricFamily:
            return CounterMetricFamily(f"driftline_shadow_{name}", doc, labels=[*pair_labels, *(extra or [])])

        requests = counter("requests", "Requests copied to the shadow version")
        compared = counter("compared_rows", "Rows whose outputs were compared")
        agreeing = counter("agreeing_rows", "Compared rows on which both versions agreed")
        errors = counter("errors", "Shadow requests that failed (never seen by the caller)")
        dropped = counter("dropped", "Shadow copies dropped because too many were in flight")
        latency = counter("latency_seconds", "Time each version spent on the shadowed requests", ["role"])
        for pair in self._table.shadows.pairs():
            labels = [pair.model, str(pair.primary), str(pair.shadow)]
            requests.add_metric(labels, pair.requests)
            compared.add_metric(labels, pair.compared_rows)
            agreeing.add_metric(labels, pair.agreeing_rows)
            errors.add_metric(labels, pair.shadow_errors)
            dropped.add_metric(labels, pair.dropped)
            latency.add_metric([*labels, "primary"], pair.primary_latency_s)
            latency.add_metric([*labels, "shadow"], pair.shadow_latency_s)
        yield from (aliases, failed, requests, compared, agreeing, errors, dropped, latency)


class RegistryCollector(Collector):
    """The registry sync's health: alert on ``driftline_registry_up == 0`` or a stale last success."""

    def __init__(self, sync: RegistrySync) -> None:
        """Collect from this sync."""
        self._sync = sync

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        sync = self._sync
        labels = [sync.source.url]
        up = GaugeMetricFamily(
            "driftline_registry_up",
            "1 when the last poll succeeded (a follower's: read what the leader placed)",
            labels=["source"],
        )
        up.add_metric(labels, int(sync.last_error is None and sync.state != "starting"))
        leader = GaugeMetricFamily("driftline_registry_leader", "1 when this process syncs", labels=["source"])
        leader.add_metric(labels, int(sync.leader))
        success = GaugeMetricFamily(
            "driftline_registry_last_success_timestamp_seconds", "When the last poll succeeded", labels=["source"]
        )
        if sync.last_success is not None:
            success.add_metric(labels, sync.last_success)
        status = sync.status()
        failed = GaugeMetricFamily(
            "driftline_registry_failed_versions", "Versions from the source refused at any step", labels=["source"]
        )
        failed.add_metric(labels, len(status.failed_versions))
        held = GaugeMetricFamily(
            "driftline_registry_deleted_but_held",
            "Versions deleted at the source that an alias, route or pin keeps here",
            labels=["source"],
        )
        held.add_metric(labels, len(status.deleted_but_held))
        yield from (up, leader, success, failed, held)


class CaptureCollector(Collector):
    """Prediction capture's writer: alert on ``driftline_capture_up == 0`` (the status route says why) or drops."""

    def __init__(self, capture: CaptureService) -> None:
        """Collect from this server's capture."""
        self._capture = capture

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        f = self._capture.figures()
        yield CounterMetricFamily("driftline_capture_rows", "Captured rows written to segments", value=f.captured)
        yield CounterMetricFamily(
            "driftline_capture_dropped", "Captured rows dropped (queue full or capture stopped)", value=f.dropped
        )
        yield GaugeMetricFamily("driftline_capture_segments", "Segments this process wrote", value=f.segments)
        yield GaugeMetricFamily("driftline_capture_bytes", "Bytes of the segments this process wrote", value=f.bytes)
        yield GaugeMetricFamily(
            "driftline_capture_queue_rows", "Captured rows submitted and not yet written", value=f.queue_rows
        )
        yield GaugeMetricFamily(
            "driftline_capture_up", "0 once capture stopped on a write error", value=f.failed is None
        )


class QualityCollector(Collector):
    """Live quality per loaded version, as the last quality check measured it over ``[quality] gauge_window_s``:
    alert on e.g. ``driftline_quality{metric="accuracy"} < 0.9`` where labels are plenty
    (``driftline_quality_labeled_rows``)."""

    def __init__(self, alerts: QualityAlerts, table: ModelTable) -> None:
        """Collect what ``alerts`` measured, for the versions ``table`` has loaded."""
        self._alerts = alerts
        self._table = table

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        value = GaugeMetricFamily(
            "driftline_quality", "A quality metric of the version's labeled rows", labels=[*LABELS, "metric"]
        )
        labeled = GaugeMetricFamily(
            "driftline_quality_labeled_rows", "Captured rows with a label, in the gauge window", labels=LABELS
        )
        coverage = GaugeMetricFamily(
            "driftline_quality_coverage_ratio", "Labeled / captured rows, in the gauge window", labels=LABELS
        )
        loaded = self._table.loaded()
        for (name, version), f in sorted(self._alerts.figures().items()):
            if version not in loaded.get(name, {}):  # unloaded since the last check: its gauges go at once
                continue
            labels = [name, str(version)]
            for metric, number in f.metrics.items():
                value.add_metric([*labels, metric], number)
            labeled.add_metric(labels, f.labeled)
            coverage.add_metric(labels, f.coverage)
        yield from (value, labeled, coverage)


class WorkerProcessCollector(Collector):
    """This process's CPU seconds, resident and virtual bytes, open and maximum fds and start time (read from
    /proc at scrape time), each with a ``worker`` label so the merged scrape of several workers keeps them apart."""

    def __init__(self, worker: str) -> None:
        """``worker``: the slot of this worker process ("0" when the server runs one)."""
        self._worker = worker
        self._process = ProcessCollector(registry=None)

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        for family in self._process.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            for s in family.samples:
                labelled.add_sample(s.name, {**s.labels, "worker": self._worker}, s.value)
            yield labelled
