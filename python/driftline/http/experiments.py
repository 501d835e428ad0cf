"""The experiments API under ``/v1/admin/models/{name}/experiments``: start one (its body is an
:class:`~driftline.experiments.spec.ExperimentSpec`), list them, read one's report (JSON, or an HTML page), stop one.

A key is always needed: viewer to read, operator to start or stop. Every refusal names the field (4xx, nothing
changed); see :mod:`driftline.experiments.service` for the checks.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter

from driftline.errors import Conflict
from driftline.experiments.html import render
from driftline.experiments.spec import Experiment, ExperimentSpec  # noqa: TC001 - Litestar reads them at run time
from driftline.http import openapi as doc
from driftline.http import query
from driftline.http.admin_bodies import ReasonBody, RowId
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import actor, require_role

__all__ = ["ExperimentsController"]

_STATES: Final = ("running", "stopped")


def _wants_html(request: Request[Any, Any, Any], format: str | None) -> bool:
    """``?format=`` decides; without it an ``Accept`` that names text/html before JSON gets the page."""
    if format is not None:
        return query.choice(format, "format", query.REPORT_FORMATS) == "html"
    accept = request.headers.get("accept", "")
    html, json = accept.find("text/html"), accept.find("application/json")
    return html >= 0 and (json < 0 or html < json)


class ExperimentsController(Controller):
    """Experiments of a model; see the module docstring."""

    path = "/v1/admin/models"
    tags = ["experiments"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role]  # noqa: RUF012
    security = doc.KEYED

    @post(
        "/{name:str}/experiments",
        summary="Start an experiment",
        opt={"role": "operator"},
        status_code=201,
        responses=doc.CHANGE,
    )
    async def create(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, data: ExperimentSpec
    ) -> Experiment:
        """Body: the experiment (arms, design, metrics, primary, guardrails, rules, ...); its arms are pinned to
        the versions they resolve to now and its design becomes the model's routing."""
        return await services.experiments.create(name, data, actor(request))

    @get("/{name:str}/experiments", summary="A model's experiments", opt={"role": "viewer"}, responses=doc.READ)
    async def experiments(
        self,
        services: ServicesDep,
        name: str,
        # "state" is a name Litestar keeps for the app state, so the parameter is read under another one.
        wanted: Annotated[str | None, QueryParameter(name="state", schema_extra={"enum": list(_STATES)})] = None,
    ) -> list[Experiment]:
        """Newest first; ``?state=running`` or ``stopped`` for one kind."""
        if wanted is not None:
            query.choice(wanted, "state", _STATES)
        return services.experiments.list(name, "running" if wanted == "running" else "stopped" if wanted else None)

    @get(
        "/{name:str}/experiments/{eid:int}",
        summary="An experiment's report",
        opt={"role": "viewer"},
        responses=doc.errors(400, 401, 403, 404, 409),
        operation_class=doc.ExperimentReportOperation,
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        name: str,
        eid: RowId,
        format: Annotated[str | None, QueryParameter(schema_extra={"enum": list(query.REPORT_FORMATS)})] = None,
    ) -> Response[Any]:
        """Per metric the arms, the difference with its anytime-valid and fixed-horizon intervals, the verdict and
        the interval over time; the promotion rules judged; the sample-ratio check. ``?format=html`` (or an
        ``Accept: text/html``) renders it as a page."""
        html = _wants_html(request, format)
        experiments = services.experiments
        experiment = experiments.get(name, eid)
        if experiments.reports is None:
            raise Conflict("this server cannot report on experiments")
        report = await asyncio.to_thread(experiments.reports.report, experiment)
        if html:
            return Response(render(report), media_type="text/html")
        return Response(msgspec.json.encode(report), media_type="application/json")

    @post(
        "/{name:str}/experiments/{eid:int}/stop",
        summary="Stop an experiment",
        opt={"role": "operator"},
        status_code=200,
        responses=doc.CHANGE,
        operation_class=doc.OptionalBody,
    )
    async def stop(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        name: str,
        eid: RowId,
        data: ReasonBody | None = None,
    ) -> Experiment:
        """Its routing goes (back to the default alias); body ``{"reason": "..."}`` is kept in the audit log."""
        body = data or ReasonBody()
        return await services.experiments.stop(name, eid, actor(request), body.reason)
