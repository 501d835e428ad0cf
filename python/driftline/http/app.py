"""The Litestar application factory: the lifespan opens the services (server/services.py) and hands them to
every handler by dependency injection; error mapping; OpenAPI."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Litestar, MediaType, Request, Response
from litestar.di import Provide
from litestar.exceptions import HTTPException

from driftline.config import ServerSettings, load_settings
from driftline.errors import DriftlineError
from driftline.http.admin import AdminController
from driftline.http.captures import CapturesController, ErasureController
from driftline.http.dashboard import DashboardController
from driftline.http.deps import services_of
from driftline.http.drain import drain_on_signal
from driftline.http.drift import DriftController
from driftline.http.experiments import ExperimentsController
from driftline.http.fastpath import InferFastPath
from driftline.http.feedback import FeedbackController
from driftline.http.jobs import JobsController
from driftline.http.kpi import KpiController
from driftline.http.methods import allow_header, complete_options_allow
from driftline.http.metrics import metrics
from driftline.http.openapi import openapi_config, ui_router
from driftline.http.ops import OpsController
from driftline.http.quality import QualityController
from driftline.http.triton import TritonController
from driftline.http.v2 import V2Controller
from driftline.logs.access import AccessLog
from driftline.server.services import open_services

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


def create_app(settings: ServerSettings) -> Litestar:
    """Build the ASGI app; models load in the lifespan, before the server reports ready."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            async with drain_on_signal(services.drain, settings.http.drain_delay_s):
                yield

    return Litestar(
        route_handlers=[
            V2Controller,
            TritonController,
            JobsController,
            DriftController,
            FeedbackController,
            QualityController,
            KpiController,
            AdminController,
            ExperimentsController,
            CapturesController,
            ErasureController,
            OpsController,
            DashboardController,
            metrics,
            ui_router(),
        ],
        lifespan=[lifespan],
        dependencies={"services": Provide(services_of, sync_to_thread=False)},
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
    return InferFastPath(create_app(settings), AccessLog(settings.logs))


def create_app_from_env() -> InferFastPath:
    """Factory for ASGI servers that import the app by name (one per worker process); reads ``DRIFTLINE_*``."""
    # Library warnings (warnings.warn) go through logging too, so they come out in the one log format.
    logging.captureWarnings(True)
    return create_server_app(load_settings())
