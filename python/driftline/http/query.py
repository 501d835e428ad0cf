"""Query parameters more than one route reads: a moment (``since`` / ``until``), a version number and a format,
each refused with a 400 that names it; and what their OpenAPI schemas say, so the two stay the same thing."""

from __future__ import annotations

import reprlib
from datetime import datetime
from typing import Any, Final

from driftline.errors import BadRequest
from driftline.repository.names import is_version

__all__ = ["DATE_TIME", "REPORT_FORMATS", "VERSION", "choice", "moment", "version_number"]

_MAX_VERSION: Final = 2**31 - 1  # segments hold the version as int32
_EXAMPLE: Final = "e.g. 2026-01-31T00:00:00Z"
#: The schema of a moment parameter.
DATE_TIME: Final[dict[str, Any]] = {"format": "date-time", "description": f"ISO 8601 with a timezone ({_EXAMPLE})"}
#: What a report route (drift, quality) answers: its JSON, or an HTML page to look at.
REPORT_FORMATS: Final = ("json", "html")


def at_most(limit: int) -> str:
    """A regular expression of the decimal numbers (leading zeros allowed) from 0 to ``limit``: a schema's
    pattern can then say how large a number a string parameter takes, as a number's ``maximum`` would."""
    digits = str(limit)
    shorter = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    lower = [f"{digits[:i]}[0-{int(d) - 1}][0-9]{{{len(digits) - i - 1}}}" for i, d in enumerate(digits) if d != "0"]
    return f"0*(?:{'|'.join([*shorter, *lower, digits])})"


#: The schema of a version parameter: a version number that segments can hold.
VERSION: Final[dict[str, Any]] = {"pattern": f"^{at_most(_MAX_VERSION)}$"}


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
