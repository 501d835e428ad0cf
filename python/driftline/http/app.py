"""The Litestar application factory: lifespan (store, repository, model table), error mapping, OpenAPI."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import HTTPException
from prometheus_client import CollectorRegistry

from driftline import __version__
from driftline.config import ServerSettings, load_settings
from driftline.drift import AlertManager, DriftMonitor
from driftline.errors import DriftlineError
from driftline.http.admin import AdminController, reload_keys
from driftline.http.drift import DriftController, check_all
from driftline.http.fastpath import InferFastPath
from driftline.http.jobs import JobsController
from driftline.http.methods import allow_header, complete_options_allow
from driftline.http.metrics import LifecycleCollector, RegistryCollector, ServingCollector, metrics
from driftline.http.openapi import openapi_config, ui_router
from driftline.http.triton import TritonController
from driftline.http.v2 import V2Controller
from driftline.jobs.roots import Roots
from driftline.jobs.runner import JobRunner
from driftline.jobs.store import JobStore
from driftline.lifecycle.proposals import Proposals
from driftline.lifecycle.service import Lifecycle
from driftline.repository import Repository
from driftline.security.keys import KeyRing
from driftline.serving import ModelTable
from driftline.serving.stats import RequestErrors
from driftline.store.audit import AuditLog
from driftline.store.db import Database
from driftline.store.deployments import DeploymentStore
from driftline.store.keys import KeyStore
from driftline.store.proposals import ProposalStore
from driftline.store.shadow_stats import ShadowStatsStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["create_app", "create_app_from_env", "create_server_app"]

_log = logging.getLogger("driftline.http")
_error_encoder = msgspec.json.Encoder()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    body = _error_encoder.encode({"error": message})
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _driftline_error(_: Request[Any, Any, Any], exc: DriftlineError) -> Response[bytes]:
    return _error(exc.http_status, str(exc))


def _source(source: Any) -> str:
    value = getattr(source, "value", source)
    return f"{value} parameter " if value else "field "


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    detail = exc.detail
    extra = getattr(exc, "extra", None)
    if isinstance(extra, list) and all(isinstance(e, dict) for e in extra):
        # Litestar's validation errors: name each field and where it came from, not a Python repr.
        problems = "; ".join(f"{_source(e.get('source'))}{e.get('key', '?')!r}: {e.get('message', '')}" for e in extra)
        detail = f"{detail.split(':', 1)[0]}: {problems}"
    elif extra:
        detail = f"{detail}: {extra}"
    # Keep the exception's headers: a 405 must say which methods the route allows (RFC 9110 15.5.6).
    headers = dict(exc.headers or {})
    if "allow" in headers:
        headers["allow"] = allow_header(headers["allow"].split(","))
    return _error(exc.status_code, detail, headers)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    _log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal server error: {type(exc).__name__}")


async def _check_drift_forever(table: ModelTable, monitor: DriftMonitor, interval: float) -> None:
    """Evaluate watched versions periodically so drift state changes raise alerts without anyone asking."""
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await check_all(table, monitor)
        except Exception:  # noqa: BLE001 - a failed check must not stop the next ones
            _log.exception("periodic drift check failed")


async def _refresh_forever(state: Any, db: Database, interval: float) -> None:
    """Pick up what another worker process wrote to the store (aliases, routing, pins, keys)."""
    if interval <= 0:
        return
    seen = db.data_version()
    while True:
        await asyncio.sleep(interval)
        try:
            state.lifecycle.persist_shadows()
            current = db.data_version()
            if current != seen:
                seen = current
                await state.lifecycle.follow_store()
                reload_keys(state)
        except Exception:  # noqa: BLE001 - a failed refresh must not stop the next ones
            _log.exception("refresh from the store failed")


def _start_sync(state: Any, settings: ServerSettings) -> asyncio.Task[None] | None:
    state.sync = None
    url = settings.registry.source
    if not url:
        return None
    from driftline.registry import ArtifactCache, open_source
    from driftline.registry.sync import RegistrySync

    state.sync = RegistrySync(
        open_source(url),
        ArtifactCache(Path(settings.registry.cache_dir)),
        state.table,
        state.lifecycle,
        state.audit,
        settings.registry,
    )
    state.registry.register(RegistryCollector(state.sync))
    return asyncio.create_task(state.sync.run_forever())


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


def create_app(settings: ServerSettings) -> Litestar:
    """Build the ASGI app; models load in the lifespan, before the server reports ready."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        state = app.state
        state.started = False
        db = Database(settings.database)
        # A missing repository was decided on (demo, refusal, or created for the sync) by `driftline serve`.
        root = Path(settings.repository)
        drift = settings.drift
        state.registry = CollectorRegistry()
        state.drift = DriftMonitor(
            AlertManager(registry=state.registry, webhooks=drift.webhooks),
            window_rows=drift.window_rows,
            window_seconds=drift.window_seconds,
            keep=drift.keep,
            sample_cap=drift.sample_cap,
        )
        state.audit = AuditLog(db)
        table = ModelTable(Repository(root), asyncio.get_running_loop(), state.audit, state.drift)
        state.table = table
        state.lifecycle = Lifecycle(
            table, DeploymentStore(db), ShadowStatsStore(db), state.audit, settings.default_alias
        )
        state.proposals = Proposals(state.lifecycle, ProposalStore(db))
        state.key_store = KeyStore(db)
        state.key_ring = KeyRing()
        state.require_key = settings.auth.require_for_inference
        state.request_errors = RequestErrors()
        state.registry.register(ServingCollector(table, state.request_errors))
        state.registry.register(LifecycleCollector(table))
        state.max_request_bytes = settings.http.max_request_bytes
        state.in_flight = 0  # inference requests being handled by the fast path right now
        state.settings = settings
        state.job_store = JobStore(db)
        state.job_runner = JobRunner(state.job_store, Roots(settings.jobs.roots))
        state.job_runner.start()
        reload_keys(state)
        # Stored aliases, routing and pins go in first: the versions they point at load whatever the policy says.
        state.lifecycle.seed()
        await table.load_all()
        state.lifecycle.refresh()
        tasks = [
            asyncio.create_task(_check_drift_forever(table, state.drift, drift.check_interval_s)),
            asyncio.create_task(_refresh_forever(state, db, settings.refresh_interval_s)),
        ]
        sync = _start_sync(state, settings)
        if sync is not None:
            tasks.append(sync)
        state.started = True
        _log_models(table, settings)
        _log.info("driftline %s ready: %d model(s) from %s", __version__, len(table.loaded()), root)
        try:
            yield
        finally:
            # Drain: every accepted request is answered before the instances are freed.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(state.job_runner.stop)
            await table.shadows.drain()
            state.lifecycle.persist_shadows()
            await table.close()
            await asyncio.to_thread(state.drift.close)
            db.close()

    return Litestar(
        route_handlers=[
            V2Controller,
            TritonController,
            JobsController,
            DriftController,
            AdminController,
            metrics,
            ui_router(),
        ],
        lifespan=[lifespan],
        exception_handlers={
            DriftlineError: _driftline_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        before_send=[complete_options_allow],
        request_max_body_size=settings.http.max_request_bytes,
        openapi_config=openapi_config(),
        # Litestar's own logging setup brings its own format; its records go to the root logger's handler.
        logging_config=None,
        debug=False,
    )


def create_server_app(settings: ServerSettings) -> InferFastPath:
    """The app the server runs: Litestar behind the raw-ASGI inference fast path (which answers HEAD as GET)."""
    return InferFastPath(create_app(settings))


def create_app_from_env() -> InferFastPath:
    """Factory for ASGI servers that import the app by name (one per worker process); reads ``DRIFTLINE_*``."""
    # Library warnings (warnings.warn) go through logging too, so they come out in the one log format.
    logging.captureWarnings(True)
    return create_server_app(load_settings())
