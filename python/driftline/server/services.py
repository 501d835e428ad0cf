"""The composition root: :func:`open_services` builds every part of a server once, in order, and closes them in
reverse; the frozen :class:`Services` it yields is what every front end (and every handler) is given."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from driftline import __version__
from driftline.capture.service import CaptureService
from driftline.drift import AlertManager, DriftMonitor, SharedWindows
from driftline.errors import DriftlineError
from driftline.experiments.data import ExperimentSources
from driftline.experiments.gate import conclude, promotion_gate
from driftline.experiments.report import ExperimentReports
from driftline.experiments.service import Experiments
from driftline.feedback.alerts import QualityAlerts
from driftline.feedback.kpis import Kpis
from driftline.feedback.service import LiveQuality
from driftline.jobs.capture import CaptureTarget
from driftline.jobs.roots import Roots
from driftline.jobs.runner import JobRunner
from driftline.jobs.store import JobStore
from driftline.lifecycle.proposals import Proposals
from driftline.lifecycle.service import Lifecycle
from driftline.ops.accounting import threshold_of, version_samples
from driftline.ops.collector import SloCollector
from driftline.repository import Repository
from driftline.security.keys import KeyRing
from driftline.server.background import (
    check_drift_forever,
    check_experiments_forever,
    check_quality_forever,
    follow_store_forever,
    retain_captures_forever,
    save_drift_windows_forever,
    save_traffic_forever,
)
from driftline.server.collectors import (
    CaptureCollector,
    LifecycleCollector,
    QualityCollector,
    RegistryCollector,
    ServingCollector,
    WorkerProcessCollector,
)
from driftline.server.drain import Drain, DrainCollector
from driftline.server.webhooks import WebhookSender
from driftline.server.worker_metrics import WorkerMetrics
from driftline.serving.dataplane import DataPlane
from driftline.serving.table import ModelTable
from driftline.serving.traffic import Traffic
from driftline.store.alert_states import AlertStates
from driftline.store.audit import AuditLog
from driftline.store.captures import CaptureIndex
from driftline.store.db import Database, open_database
from driftline.store.deployments import DeploymentStore
from driftline.store.drift_windows import DriftWindowStore
from driftline.store.evaluations import EvaluationStore
from driftline.store.experiments import ExperimentStore
from driftline.store.feedback import FeedbackStore
from driftline.store.keys import KeyStore
from driftline.store.kpis import KpiStore
from driftline.store.proposals import ProposalStore
from driftline.store.shadow_stats import ShadowStatsStore
from driftline.store.traffic import TrafficStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from driftline.config import ServerSettings
    from driftline.registry.sync import RegistrySync

__all__ = ["Services", "open_services"]

_log = logging.getLogger("driftline.server")
# Seconds between retention passes over the captured segments.
_RETENTION_INTERVAL_S = 300.0
# Seconds between saves of this process's traffic counts (what an experiment report may lag behind other workers).
_TRAFFIC_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class Services:
    """A running server's parts; built once by :func:`open_services`, never rebound."""

    settings: ServerSettings
    table: ModelTable
    plane: DataPlane
    lifecycle: Lifecycle
    proposals: Proposals
    audit: AuditLog
    drift: DriftMonitor
    keys: KeyRing
    key_store: KeyStore
    jobs: JobRunner
    job_store: JobStore
    feedback: FeedbackStore
    quality: LiveQuality
    kpis: Kpis
    quality_alerts: QualityAlerts
    experiments: Experiments
    sync: RegistrySync | None
    metrics: CollectorRegistry
    capture: CaptureService | None  # None: capture is off for the server and every model
    traffic: Traffic
    workers: WorkerMetrics | None  # None: one worker process, whose registry is the whole scrape
    drain: Drain  # set at SIGTERM when http.drain_delay_s > 0 (http/drain.py); readiness answers 503 from then

    def reload_keys(self) -> None:
        """Install the config file's keys and the store's live keys in the key ring (one swap)."""
        keys = [(k.name, k.role, k.sha256) for k in self.settings.auth.keys]
        keys += [(k.name, k.role, k.sha256) for k in self.key_store.api_keys() if k.revoked_at is None]
        self.keys.replace(keys)


def _open_sync(
    settings: ServerSettings, table: ModelTable, lifecycle: Lifecycle, audit: AuditLog
) -> RegistrySync | None:
    if not settings.registry.source:
        return None
    # Imported only when configured: the MLflow source pulls in its client.
    from driftline.registry import ArtifactCache, open_source
    from driftline.registry.leader import sync_lock
    from driftline.registry.sync import RegistrySync

    cache = ArtifactCache(Path(settings.registry.cache_dir))
    source = open_source(settings.registry.source)
    lock = sync_lock(settings.database, cache.root, source.url)
    return RegistrySync(source, cache, table, lifecycle, audit, settings.registry, lock)


def _open_capture(settings: ServerSettings, repository: Repository, db: Database) -> CaptureService | None:
    """Capture, when the server's default or any model's ``[capture]`` turns it on (a model whose config cannot
    be read does not count: it will not load either)."""
    default = settings.capture
    enabled = default.enabled
    for name in () if enabled else repository.model_names():
        try:
            enabled = repository.model(name).config.capture.over(default).enabled
        except DriftlineError:
            continue
        if enabled:
            break
    return CaptureService(Path(default.directory), CaptureIndex(db), default) if enabled else None


def _log_models(table: ModelTable, settings: ServerSettings) -> None:
    """Name every model and the versions it serves; a version that failed is a warning with its reason."""
    loaded = table.loaded()
    names = sorted(set(table.repository.model_names()) | set(loaded))
    for name in names:
        for version, reason in sorted(table.failures(name).items()):
            _log.warning("model %s version %d failed to load: %s", name, version, reason)
        versions = sorted(loaded.get(name, {}))
        if versions:
            _log.info("model %s: serving version(s) %s", name, ", ".join(map(str, versions)))
        else:
            _log.error("model %s: no version loaded: %s", name, table.error(name) or "unloaded")
    if not names and not settings.registry.source:
        _log.warning("the repository %s holds no model: nothing will be served", table.repository.root)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def open_services(settings: ServerSettings) -> AsyncIterator[Services]:
    """Open the store, load the models, start the background work; on exit drain every accepted request first.

    Every part is closed in the reverse order it was opened, also when a later part fails to open (a store that
    cannot be read, a job root refused): nothing is left running or open. A missing repository was decided on
    (demo, refusal, or created for the sync) by ``driftline serve``.
    """
    async with AsyncExitStack() as stack:
        db = open_database(settings.database)
        stack.callback(db.close)
        drift = settings.drift
        metrics = CollectorRegistry()
        workers = None
        if settings.http.metrics_dir:
            # Opened early so it closes late: its final counters are written after every request was answered.
            workers = WorkerMetrics(Path(settings.http.metrics_dir), metrics)
            stack.push_async_callback(workers.close)
        # One sender for every alert (drift and quality), closed after everything that sends to it.
        urls, a = settings.webhooks(), settings.alerts
        send = None
        if urls:
            sender = WebhookSender(urls, retries=a.retries, backoff=a.backoff_s, timeout=a.timeout_s)
            stack.push_async_callback(asyncio.to_thread, sender.close)
            send = sender.send
        monitor = DriftMonitor(
            AlertManager(registry=metrics, send=send, claim=AlertStates(db, "drift").claim),
            window_rows=drift.window_rows,
            window_seconds=drift.window_seconds,
            keep=drift.keep,
            sample_cap=drift.sample_cap,
        )
        stack.push_async_callback(asyncio.to_thread, monitor.close)
        audit = AuditLog(db)
        repository = Repository(Path(settings.repository))
        capture = _open_capture(settings, repository, db)
        traffic = Traffic(TrafficStore(db))
        # Under the id its traffic is saved with; monitor.close() saves the windows a last time.
        shared = SharedWindows(monitor, DriftWindowStore(db), traffic.process, retain_s=drift.retain_s)
        monitor.share(shared)
        stack.callback(traffic.flush)  # after the table closed: the last requests answered are counted
        if capture is not None:
            stack.push_async_callback(asyncio.to_thread, capture.close)  # after the table: its answers are queued
        table = ModelTable(repository, asyncio.get_running_loop(), audit, monitor)
        traffic.threshold_of, traffic.versions = threshold_of(table, settings.slo), version_samples(table)
        stack.push_async_callback(table.close)  # after its queues drained: every accepted request is answered
        lifecycle = Lifecycle(table, DeploymentStore(db), ShadowStatsStore(db), audit, settings.default_alias)
        stack.callback(lifecycle.persist_shadows)
        stack.push_async_callback(table.shadows.drain)
        keys = KeyRing()
        plane = DataPlane(
            table, keys, require_key=settings.auth.require_for_inference, capture=capture, traffic=traffic
        )
        job_store = JobStore(db)
        feedback = FeedbackStore(db)
        reader = None if capture is None else capture.reader
        quality = LiveQuality(table, feedback, reader, EvaluationStore(db))
        kpis = Kpis(KpiStore(db), reader)
        window = timedelta(seconds=settings.quality.gauge_window_s)
        quality_alerts = QualityAlerts(
            quality,
            base_url=settings.http.base_url(),
            gauge_window=window,
            send=send,
            claim=AlertStates(db, "quality").claim,
        )
        experiments = Experiments(
            lifecycle,
            ExperimentStore(db),
            quality,
            capture,
            reports=ExperimentReports(ExperimentSources(quality, kpis, traffic)),
            send=send,
            base_url=settings.http.base_url(),
        )
        services = Services(
            settings=settings,
            table=table,
            plane=plane,
            lifecycle=lifecycle,
            proposals=Proposals(
                lifecycle,
                ProposalStore(db),
                lambda p: promotion_gate(experiments, p),
                lambda p, actor: conclude(experiments, p, actor),
            ),
            audit=audit,
            drift=monitor,
            keys=keys,
            key_store=KeyStore(db),
            jobs=JobRunner(job_store, Roots(settings.jobs.roots), CaptureTarget(settings.capture, CaptureIndex(db))),
            job_store=job_store,
            feedback=feedback,
            quality=quality,
            kpis=kpis,
            quality_alerts=quality_alerts,
            experiments=experiments,
            sync=_open_sync(settings, table, lifecycle, audit),
            metrics=metrics,
            capture=capture,
            traffic=traffic,
            workers=workers,
            drain=Drain(),
        )
        metrics.register(ServingCollector(table, plane.errors))
        metrics.register(LifecycleCollector(table))
        if services.sync is not None:
            metrics.register(RegistryCollector(services.sync))
        if capture is not None:
            metrics.register(CaptureCollector(capture))
        metrics.register(QualityCollector(quality_alerts, table))
        metrics.register(DrainCollector(services.drain))
        metrics.register(WorkerProcessCollector("0" if workers is None else workers.worker))
        slo = SloCollector(traffic, settings, repository) if settings.slo.enabled else None
        if slo is not None:
            metrics.register(slo)
        services.jobs.start()
        stack.push_async_callback(asyncio.to_thread, services.jobs.stop)
        services.reload_keys()
        # Stored aliases, routing and pins go in first: the versions they point at load whatever the policy says.
        lifecycle.seed()
        await table.load_all()
        # Not refresh(): another worker may have pinned a version and pointed an alias at it while this one
        # loaded; follow_store loads what the store points at before it swaps the routes in.
        await lifecycle.follow_store()
        tasks = [
            asyncio.create_task(check_drift_forever(table, monitor, drift.check_interval_s)),
            asyncio.create_task(check_quality_forever(table, quality_alerts, settings.quality.check_interval_s)),
            asyncio.create_task(check_experiments_forever(experiments, settings.experiments.check_interval_s)),
            asyncio.create_task(follow_store_forever(lifecycle, db, services.reload_keys, settings.refresh_interval_s)),
            asyncio.create_task(save_traffic_forever(traffic, _TRAFFIC_INTERVAL_S)),
            asyncio.create_task(save_drift_windows_forever(shared, drift.persist_interval_s)),
        ]
        if slo is not None:
            tasks.append(asyncio.create_task(slo.refresh_forever(_TRAFFIC_INTERVAL_S)))
        if services.sync is not None:
            tasks.append(asyncio.create_task(services.sync.run_forever()))
        if capture is not None:
            tasks.append(asyncio.create_task(retain_captures_forever(capture, table, _RETENTION_INTERVAL_S)))
        stack.push_async_callback(_cancel, tasks)
        if workers is not None:
            await workers.start(
                lambda: [
                    m.stats.as_triton(m.name, str(m.version)) for vs in table.loaded().values() for m in vs.values()
                ]
            )
            stack.callback(workers.keep_final)  # the first thing at shutdown, while the models are loaded
        _log_models(table, settings)
        _log.info(
            "driftline %s ready: %d model(s) from %s", __version__, len(table.loaded()), Path(settings.repository)
        )
        yield services
