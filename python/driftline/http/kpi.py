"""``POST /v1/models/{name}/kpi``: business KPI events of captured requests (by request id or by entity), and
``GET`` of the same path: the KPIs per version they are attributed to."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.openapi.spec import Operation
from litestar.params import QueryParameter

from driftline.feedback.kpi_body import WireKpi, parse_kpis
from driftline.feedback.kpis import KpiCounts, KpiSummary  # noqa: TC001 - Litestar reads handler annotations
from driftline.http import query
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, errors, one_or_many

__all__ = ["KpiController", "KpiOperation"]


@dataclass
class KpiOperation(Operation):
    """The KPI route reads its body itself (the 404 comes before it): document the body it takes."""

    def __post_init__(self) -> None:
        """One event, or ``{"kpi": [...]}`` of them; exactly one of id and entity (the struct cannot say so)."""
        self.request_body = one_or_many(
            WireKpi,
            "kpi",
            "One KPI event, or up to feedback.max_items of them in a list (all stored or none)",
            oneOf=[{"required": ["id"]}, {"required": ["entity"]}],
        )


class KpiController(Controller):
    """KPI events that arrive after the prediction; attributed to the version that served it when read."""

    path = "/v1/models"
    tags = ["kpi"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012
    security = KEYED_WHEN_CONFIGURED

    @post(
        "/{name:str}/kpi",
        status_code=200,
        summary="Post business KPI events",
        responses=errors(400, 401, 403, 404, 413),
        # KPI events are data written into the store: once the server has keys, a predictor's key or above.
        opt={"role": "predictor"},
        operation_class=KpiOperation,
    )
    async def post_kpi(self, request: Request[Any, Any, Any], services: ServicesDep, name: str) -> KpiCounts:
        """Store one event (``{"id": ..., "name": "conversion", "value": 1}`` or ``{"entity": ..., ...}``, with an
        optional ``at`` and ``event_id``) or ``{"kpi": [...]}`` of them, all or none.

        Events are sums: the same event posted twice is stored twice, unless both carry the same ``event_id``
        (then the later replaces the earlier and it counts once). The model is looked up before the body is read,
        so an unknown model is a 404 whatever the body holds. ``unattributed`` counts the events that name no
        captured row as of now (rows still queued for writing are not yet seen; they attribute once written).
        """
        await asyncio.to_thread(services.table.require_known, name)  # a KPI needs no [quality] table
        body = await request.body()
        events = parse_kpis(body, services.settings.feedback.max_items)
        return await asyncio.to_thread(services.kpis.put, name, events)

    @get(
        "/{name:str}/kpi",
        summary="KPIs per version",
        responses=errors(400, 401, 403, 404),
    )
    async def summary(
        self,
        services: ServicesDep,
        name: str,
        since: Annotated[str | None, QueryParameter(schema_extra=query.DATE_TIME)] = None,
        until: Annotated[str | None, QueryParameter(schema_extra=query.DATE_TIME)] = None,
    ) -> KpiSummary:
        """Per KPI and version, over the requests captured in ``[since, until)``: events, their sum and mean; and
        per KPI the events no captured request claims (in a window: those whose ``at`` lies in it)."""
        await asyncio.to_thread(services.table.require_known, name)
        start, end = query.moment(since, "since"), query.moment(until, "until")
        return await asyncio.to_thread(services.kpis.summary, name, since=start, until=end)
