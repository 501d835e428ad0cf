"""``/v1/models/{name}[/versions/{v}]/drift``: the live windows' drift report (JSON, or HTML to look at)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from driftline.errors import ReferenceNotFound
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, DriftReportOperation, errors
from driftline.http.query import REPORT_FORMATS, choice

__all__ = ["DriftController"]


class DriftController(Controller):
    """Drift reports of live traffic against each model version's reference data."""

    path = "/v1/models"
    tags = ["drift"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012
    security = KEYED_WHEN_CONFIGURED

    @get(
        ["/{name:str}/drift", "/{name:str}/versions/{version:str}/drift"],
        summary="Drift report",
        responses=errors(400, 401, 403, 404, 503),
        operation_class=DriftReportOperation,
    )
    async def report(
        self,
        services: ServicesDep,
        name: str,
        version: str | None = None,
        format: Annotated[str, QueryParameter(schema_extra={"enum": list(REPORT_FORMATS)})] = "json",
    ) -> Response[Any]:
        """The sliding window's report, merged over every process and replica sharing the store (this one's saved
        first; docs/drift.md); ``?format=html`` renders a self-contained page with charts.

        An unknown ``format`` is a 400 naming the allowed values (it used to fall back to JSON silently).
        """
        choice(format, "format", REPORT_FORMATS)
        model = services.table.get(name, version)
        monitor = services.drift
        if monitor.window(model.name, str(model.version)) is None:
            raise ReferenceNotFound(f"model {name!r} version {model.version} has no reference data, so no drift report")
        # On a thread: the merge reads every process's saved windows from the store (monitor.check via SharedWindows).
        report, _ = await asyncio.to_thread(monitor.check, model.name, str(model.version))
        if format == "html":
            # Litestar appends "; charset=utf-8" to text/ types: naming it here sent it twice.
            return Response(report.to_html(), media_type="text/html")
        return Response(report.to_json(), media_type="application/json")
