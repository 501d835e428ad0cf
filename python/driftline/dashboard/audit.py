"""The audit trail view: filter by actor, action, model and time range (query parameters, so a filtered view is a
link), newest first, a bounded page at a time (``before`` pages back by event id)."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Final
from urllib.parse import urlencode

from driftline.dashboard.layout import table
from driftline.errors import BadRequest
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    from driftline.store.audit import AuditLog

__all__ = ["PAGE_SIZE", "AuditFilter", "parse_filter", "render_audit"]

#: Events per page.
PAGE_SIZE: Final = 50
_MAX_TEXT: Final = 200


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """The view's query parameters, checked."""

    actor: str | None = None
    action: AuditAction | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None

    def query(self, **change: str | None) -> str:
        """This filter as a query string, with ``change`` applied (None drops a parameter)."""
        values = {
            "actor": self.actor,
            "action": self.action.value if self.action else None,
            "model": self.model,
            "since": None if self.since is None else self.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "until": None if self.until is None else self.until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "before": None if self.before is None else str(self.before),
        }
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v})


def _text(value: str | None, name: str) -> str | None:
    if not value:
        return None
    if len(value) > _MAX_TEXT:
        raise BadRequest(f"query parameter {name!r} must be at most {_MAX_TEXT} characters")
    return value


def _moment(value: str | None, name: str) -> datetime | None:
    """A time from the form: ISO 8601; without a timezone it is UTC (what the form says)."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.upper())
        # OverflowError: a zone that moves the first or last representable day out of range.
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"query parameter {name!r} must be ISO 8601 (e.g. 2026-01-31T00:00Z), got {reprlib.repr(value)}"
        ) from None


def parse_filter(params: dict[str, str]) -> AuditFilter:
    """The filter the query parameters ask for.

    Raises:
        BadRequest: naming the parameter: an unknown action, a bad time or page, a too long text.
    """
    action = _text(params.get("action"), "action")
    if action is not None and action not in AuditAction.__members__.values():
        raise BadRequest(
            f"query parameter 'action' must be one of {', '.join(AuditAction)}; got {reprlib.repr(action)}"
        )
    before = _text(params.get("before"), "before")
    if before is not None and not (before.isascii() and before.isdigit() and 0 < int(before) < 2**63):
        raise BadRequest(f"query parameter 'before' must be a positive event id, got {reprlib.repr(before)}")
    return AuditFilter(
        actor=_text(params.get("actor"), "actor"),
        action=AuditAction(action) if action else None,
        model=_text(params.get("model"), "model"),
        since=_moment(params.get("since"), "since"),
        until=_moment(params.get("until"), "until"),
        before=int(before) if before else None,
    )


def _stored(at: datetime | None) -> str | None:
    """A time in the audit log's own text form (milliseconds, Z), so text comparison is time order."""
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _form(f: AuditFilter) -> str:
    options = "".join(
        f"<option value='{a.value}'{' selected' if f.action == a else ''}>{a.value}</option>" for a in AuditAction
    )

    def field(name: str, label: str, value: str | None) -> str:
        return f"<label>{label}<input name='{name}' value='{escape(value or '')}'></label>"

    return (
        "<form class='filters' method='get' action='/ui/audit'>"
        + field("actor", "Actor (key:NAME, system, anonymous)", f.actor)
        + f"<label>Action<select name='action'><option value=''>any</option>{options}</select></label>"
        + field("model", "Model", f.model)
        + field("since", "Since (UTC)", None if f.since is None else f.since.strftime("%Y-%m-%dT%H:%M"))
        + field("until", "Until (UTC)", None if f.until is None else f.until.strftime("%Y-%m-%dT%H:%M"))
        + "<button class='primary' type='submit'>Filter</button></form>"
    )


def render_audit(log: AuditLog, f: AuditFilter) -> list[str]:
    """The view's body: the filter form, one page of matching events and the links to page on; blocking."""
    events = log.search(
        actor=f.actor,
        action=f.action,
        model=f.model,
        since=_stored(f.since),
        until=_stored(f.until),
        before_id=f.before,
        limit=PAGE_SIZE + 1,
    )
    page, more = events[:PAGE_SIZE], len(events) > PAGE_SIZE
    rows = [
        [
            f"{e.id}",
            escape(e.at.replace("T", " ").rstrip("Z")),
            escape(e.actor),
            f"<span class='badge insufficient_data'>{escape(e.action.value)}</span>",
            f"<span>{escape(e.model)}</span>",  # a model named "-" (key events) is no number to right-align
            escape(e.version_before or ""),
            escape(e.version_after or ""),
            escape(e.reason or ""),
        ]
        for e in page
    ]
    pager = []
    if f.before is not None:
        pager.append(f"<a href='/ui/audit?{escape(f.query(before=None))}'>Newest</a>")
    if more:
        pager.append(f"<a id='older' href='/ui/audit?{escape(f.query(before=str(page[-1].id)))}'>Older</a>")
    return [
        _form(f),
        table(
            ["Id", "At (UTC)", "Actor", "Action", "Model", "Before", "After", "Reason"],
            rows,
            "audit",
            empty="no event matches",
        ),
        f"<div class='pager'>{''.join(pager)}</div>",
    ]
