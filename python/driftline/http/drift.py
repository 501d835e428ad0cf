"""``/v1/models/{name}[/versions/{v}]/drift``: the live window's drift report (JSON, or HTML to look at)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from litestar import Controller, Request, Response, get

from driftline.errors import ModelNotFound
from driftline.http.guards import require_role_when_keyed

if TYPE_CHECKING:
    from driftline.drift import DriftMonitor
    from driftline.serving.table import ModelTable

__all__ = ["DriftController", "check_all"]

_log = logging.getLogger("driftline.drift")


async def check_all(table: ModelTable, monitor: DriftMonitor) -> int:
    """Evaluate every watched, loaded version once (alerts fire on state changes); returns how many were checked."""
    checked = 0
    for name, versions in table.loaded().items():
        for version in versions:
            if monitor.window(name, str(version)) is None:
                continue
            try:
                await asyncio.to_thread(monitor.check, name, str(version))
                checked += 1
            except KeyError:
                continue  # unloaded meanwhile
    return checked


class DriftController(Controller):
    """Drift reports of live traffic against each model version's reference data."""

    path = "/v1/models"
    tags = ["drift"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012

    @get(["/{name:str}/drift", "/{name:str}/versions/{version:str}/drift"], summary="Drift report")
    async def report(
        self, request: Request[Any, Any, Any], name: str, version: str | None = None, format: str = "json"
    ) -> Response[Any]:
        """The current window's report; ``?format=html`` renders a self-contained page with charts."""
        state = request.app.state
        model = state.table.get(name, version)
        monitor: DriftMonitor = state.drift
        if monitor.window(model.name, str(model.version)) is None:
            raise ModelNotFound(f"model {name!r} version {model.version} has no reference data, so no drift report")
        report, _ = await asyncio.to_thread(monitor.check, model.name, str(model.version))
        if format == "html":
            return Response(report.to_html(), media_type="text/html; charset=utf-8")
        return Response(report.to_json(), media_type="application/json")
