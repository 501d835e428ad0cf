"""``GET /v1/models/{name}/quality``: live quality per version and window, from captured rows joined to their labels
(JSON, or ``?format=html`` to look at)."""

from __future__ import annotations

import asyncio
import math
import re
import reprlib
from datetime import timedelta
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Response, get
from litestar.params import QueryParameter

from driftline.errors import BadRequest
from driftline.feedback.html import render_quality
from driftline.http import query
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, QualityReportOperation, errors

__all__ = ["MAX_WINDOW", "QualityController", "parse_confidence", "parse_window"]

_UNITS: Final = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_WINDOW: Final = re.compile(r"\A([0-9]{1,12})([smhd]?)\Z")
#: The longest time window: a window's end must still be a date (one of ten years is one window in practice).
MAX_WINDOW: Final = timedelta(days=3660)
_MAX_COUNT: Final = 10**9
# Beyond this the interval's quantile rounds to 1.0 and its z is infinite.
_MAX_CONFIDENCE: Final = 1.0 - 1e-9
_WINDOW_DOC: Final = {
    "pattern": r"^[0-9]+[smhd]?$",
    "description": "A time span (30m, 1h, 1d; windows aligned to the epoch) or N: a window per N labeled rows",
}
_CONFIDENCE_DOC: Final = {"pattern": r"^0?\.[0-9]*[1-9][0-9]*$", "description": "Level of every interval, in (0, 1)"}


def parse_window(value: str | None) -> timedelta | int | None:
    """Query parameter ``window``: ``<n><s|m|h|d>`` is a time span, a plain ``<n>`` a count of labeled rows."""
    if value is None:
        return None
    match = _WINDOW.match(value)
    if match is None or int(match[1]) == 0:
        raise BadRequest(
            "query parameter 'window' must be a positive time span (30m, 1h, 1d) or a positive count of "
            f"labeled rows (500), got {reprlib.repr(value)}"
        )
    count, unit = int(match[1]), match[2]
    if not unit:
        if count > _MAX_COUNT:
            raise BadRequest(f"query parameter 'window' must be at most {_MAX_COUNT} labeled rows, got {count}")
        return count
    if count * _UNITS[unit].total_seconds() > MAX_WINDOW.total_seconds():
        raise BadRequest(f"query parameter 'window' must be at most {MAX_WINDOW.days}d, got {value!r}")
    return count * _UNITS[unit]


def parse_confidence(value: str | None) -> float:
    """Query parameter ``confidence`` (default 0.95)."""
    if value is None:
        return 0.95
    try:
        level = float(value)
    except ValueError:
        level = math.nan
    if not 0.0 < level <= _MAX_CONFIDENCE:
        raise BadRequest(f"query parameter 'confidence' must be a number in (0, 1), got {reprlib.repr(value)}")
    return level


class QualityController(Controller):
    """Live quality of each model version against the labels it was sent."""

    path = "/v1/models"
    tags = ["quality"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012
    security = KEYED_WHEN_CONFIGURED

    @get(
        "/{name:str}/quality",
        summary="Live quality per version and window",
        responses=errors(400, 401, 403, 404, 409),
        operation_class=QualityReportOperation,
    )
    async def report(
        self,
        services: ServicesDep,
        name: str,
        version: Annotated[str | None, QueryParameter(schema_extra=query.VERSION)] = None,
        since: Annotated[str | None, QueryParameter(schema_extra=query.DATE_TIME)] = None,
        until: Annotated[str | None, QueryParameter(schema_extra=query.DATE_TIME)] = None,
        window: Annotated[str | None, QueryParameter(schema_extra=_WINDOW_DOC)] = None,
        confidence: Annotated[str | None, QueryParameter(schema_extra=_CONFIDENCE_DOC)] = None,
        format: Annotated[str, QueryParameter(schema_extra={"enum": list(query.REPORT_FORMATS)})] = "json",
    ) -> Response[Any]:
        """Quality of the rows captured in ``[since, until)`` (one version, or each), overall and per window, with
        confidence intervals and label coverage; ``?format=html`` renders a self-contained page with charts.

        An unknown model is a 404 and one without ``[quality]`` a 409, before the parameters are read; a server
        that captures nothing answers an empty report (``versions: []``, every label unmatched).
        """
        quality = services.quality
        await asyncio.to_thread(quality.config, name)
        query.choice(format, "format", query.REPORT_FORMATS)
        number = query.version_number(version)
        start, end = query.moment(since, "since"), query.moment(until, "until")
        span, level = parse_window(window), parse_confidence(confidence)
        report = await asyncio.to_thread(
            quality.report, name, version=number, since=start, until=end, window=span, confidence=level
        )
        if format == "html":
            return Response(render_quality(report, name), media_type="text/html")
        return Response(msgspec.json.encode(report), media_type="application/json")
