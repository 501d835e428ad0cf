"""The body of ``POST /v1/models/{m}/kpi``: one KPI event object, or ``{"kpi": [...]}`` of them (the shape of a
feedback body, split by the same code)."""

from __future__ import annotations

import math
import re
import reprlib
from datetime import datetime  # noqa: TC003 - msgspec needs it at run time
from typing import Annotated, Any, Final

import msgspec

from driftline.capture.reader import to_us
from driftline.errors import BadRequest
from driftline.feedback.body import decode_item, one_key, split_items
from driftline.store.kpis import KpiEvent

__all__ = ["KPI_NAME", "WireKpi", "parse_kpis"]

#: What a KPI's name may be: it is a key in reports and in the experiments that name it.
KPI_NAME: Final = r"^[A-Za-z0-9_.-]{1,64}$"
_NAME: Final = re.compile(KPI_NAME.strip("^$"))
_EVENT_ID_MAX: Final = 256
_SHOWN: Final = 40  # characters of a refused value the message quotes


class WireKpi(msgspec.Struct, forbid_unknown_fields=True):
    """One KPI event as it arrives: ``id`` (a captured request's) or ``entity``, the KPI's ``name`` and ``value``,
    optionally when it happened (``at``, default: when received) and an idempotency key (``event_id``)."""

    # The pattern is checked by hand too: Python's $ also matches before a final newline.
    name: Annotated[str, msgspec.Meta(extra_json_schema={"pattern": KPI_NAME}, description="The KPI's name")]
    # Checked by hand (a finite number, not a bool): msgspec's float would take true as 1.
    value: Annotated[Any, msgspec.Meta(extra_json_schema={"type": "number"}, description="A finite number")]
    id: str | msgspec.UnsetType = msgspec.UNSET
    entity: str | msgspec.UnsetType = msgspec.UNSET
    at: (
        Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339; default: when received")] | msgspec.UnsetType
    ) = msgspec.UNSET
    event_id: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1, max_length=_EVENT_ID_MAX, description="Idempotency key: the same one again replaces"
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


_ITEM = msgspec.json.Decoder(WireKpi)


def parse_kpis(body: bytes, max_items: int) -> list[KpiEvent]:
    """The events of a KPI body; the list's length is checked before any item is decoded, and every refusal names
    its field (``kpi[3].value``, or ``value`` for a body of one object).

    Raises:
        BadRequest: not JSON, not an object, an unknown or missing field, a field of the wrong type, a name that
            is not 1..64 of ``[A-Za-z0-9_.-]``, a value that is no finite number (a bool included), an ``at``
            without a timezone, more than ``max_items`` items, an empty list, both or neither of id and entity.
    """
    return [_item(raw, prefix) for raw, prefix in split_items(body, "kpi", max_items)]


def _item(raw: bytes | msgspec.Raw, prefix: str) -> KpiEvent:
    wire = decode_item(_ITEM, raw, prefix, "kpi")
    one_key(wire.id is not msgspec.UNSET, wire.entity is not msgspec.UNSET, prefix, "a KPI event")
    if not _NAME.fullmatch(wire.name):
        raise BadRequest(f"{prefix}name must be 1..64 of A-Z a-z 0-9 _ . -, got {reprlib.repr(wire.name)}")
    return KpiEvent(
        name=wire.name,
        value=_value(wire.value, f"{prefix}value"),
        request_id=None if isinstance(wire.id, msgspec.UnsetType) else wire.id,
        entity=None if isinstance(wire.entity, msgspec.UnsetType) else wire.entity,
        at_us=None if isinstance(wire.at, msgspec.UnsetType) else to_us(wire.at, f"{prefix}at"),
        event_id=None if isinstance(wire.event_id, msgspec.UnsetType) else wire.event_id,
    )


def _value(value: Any, field: str) -> float:
    """A JSON number as a float: true is no 1, and an integer past a float's range is no number either."""
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number):
        text = msgspec.json.encode(value).decode()
        shown = text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."
        raise BadRequest(f"{field} must be a finite number, got {shown}")
    return number
