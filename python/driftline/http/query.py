"""Query parameters more than one route reads: a moment (``since`` / ``until``), a version number and a format,
each refused with a 400 that names it; and what their OpenAPI schemas say, so the two stay the same thing."""

from __future__ import annotations

import reprlib
from datetime import datetime
from typing import Any, Final

from driftline.errors import BadRequest
from driftline.repository.names import VERSION_PATTERN, is_version

__all__ = ["DATE_TIME", "REPORT_FORMATS", "VERSION", "choice", "moment", "version_number"]

_MAX_VERSION: Final = 2**31 - 1  # segments hold the version as int32
_EXAMPLE: Final = "e.g. 2026-01-31T00:00:00Z"
#: The schema of a moment parameter.
DATE_TIME: Final[dict[str, Any]] = {"format": "date-time", "description": f"ISO 8601 with a timezone ({_EXAMPLE})"}
#: What a report route (drift, quality) answers: its JSON, or an HTML page to look at.
REPORT_FORMATS: Final = ("json", "html")
#: The schema of a version parameter.
VERSION: Final[dict[str, Any]] = {"pattern": f"^{VERSION_PATTERN}$"}


def moment(value: str | None, name: str) -> datetime | None:
    """Query parameter ``name`` as a timezone-aware datetime (None when absent)."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.upper())  # RFC 3339 allows a lowercase t and z
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be ISO 8601 ({_EXAMPLE}), got {reprlib.repr(value)}") from None
    if at.tzinfo is None:
        raise BadRequest(f"query parameter {name!r} must carry a timezone ({_EXAMPLE}), got {reprlib.repr(value)}")
    return at


def version_number(value: str | None) -> int | None:
    """Query parameter ``version`` as a number (None when absent: every version)."""
    if value is None:
        return None
    if not (is_version(value) and int(value) <= _MAX_VERSION):
        raise BadRequest(f"query parameter 'version' must be a version number, got {reprlib.repr(value)}")
    return int(value)


def choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    """Query parameter ``name`` when it is one of ``allowed``."""
    if value not in allowed:
        raise BadRequest(f"query parameter {name!r} must be one of {', '.join(allowed)}; got {reprlib.repr(value)}")
    return value
