"""Parsing a KPI body: one event or ``{"kpi": [...]}``, every refusal a 400 naming its field; the list's length
is checked before any item is decoded."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from driftline.errors import BadRequest
from driftline.feedback.kpi_body import parse_kpis
from driftline.store.kpis import KpiEvent


def _parse(body: object, max_items: int = 5) -> list[KpiEvent]:
    return parse_kpis(msgspec.json.encode(body), max_items)


def test_one_event_and_a_list():
    assert _parse({"id": "r1", "name": "conversion", "value": 1}) == [
        KpiEvent(name="conversion", value=1.0, request_id="r1")
    ]
    events = _parse(
        {
            "kpi": [
                {"entity": "u-7", "name": "revenue", "value": 12.5, "at": "2026-01-31T10:00:00+02:00"},
                {"id": "r2", "name": "order.v2-total_eur", "value": -3, "event_id": "o-1"},
            ]
        }
    )
    at = datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert events == [
        KpiEvent(name="revenue", value=12.5, entity="u-7", at_us=int(at.timestamp()) * 1_000_000),
        KpiEvent(name="order.v2-total_eur", value=-3.0, request_id="r2", event_id="o-1"),
    ]
    assert all(type(e.value) is float for e in events)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"kpi": [{"id": "a", "name": "c", "value": 1}, {"id": "b", "name": "c", "value": "x"}]},
            'kpi[1].value must be a finite number, got "x"',
        ),
        ({"id": "a", "name": "c", "value": True}, "value must be a finite number, got true"),
        ({"id": "a", "name": "c", "value": None}, "value must be a finite number, got null"),
        ({"id": "a", "name": "c", "value": [1]}, "value must be a finite number, got [1]"),
        ({"id": "a", "name": "c", "value": 10**400}, "value must be a finite number, got 1000"),
        ({"id": "a", "name": "c"}, "missing required field `value`"),
        ({"kpi": [{"id": "a", "value": 1}]}, "kpi[0]: Object missing required field `name`"),
        ({"id": "a", "name": "", "value": 1}, "name must be 1..64"),
        ({"id": "a", "name": "c d", "value": 1}, "name must be 1..64"),
        ({"id": "a", "name": "conversion\n", "value": 1}, "name must be 1..64"),
        ({"kpi": [{"id": "a", "name": "x" * 65, "value": 1}]}, "kpi[0].name must be 1..64"),
        ({"id": 7, "name": "c", "value": 1}, "at `id`"),
        ({"kpi": [{"id": "a", "entity": "u", "name": "c", "value": 1}]}, "kpi[0].id, kpi[0].entity"),
        ({"name": "c", "value": 1}, "id, entity: a KPI event names exactly one of the two, this has neither"),
        ({"id": "a", "name": "c", "value": 1, "at": "2026-01-31T10:00:00"}, "timezone component - at `at`"),
        ({"id": "a", "name": "c", "value": 1, "at": "yesterday"}, "at `at`"),
        ({"id": "a", "name": "c", "value": 1, "event_id": ""}, "at `event_id`"),
        ({"id": "a", "name": "c", "value": 1, "colour": "red"}, "unknown field `colour`"),
        ({"kpi": []}, "kpi: the list is empty"),
        ({"kpi": [{"id": "a", "name": "c", "value": 1}], "extra": 1}, "unknown field 'extra' beside 'kpi'"),
        ({"kpi": {"id": "a"}}, "kpi: Expected `array`"),
        ([{"id": "a", "name": "c", "value": 1}], "kpi body: Expected `object`"),
    ],
)
def test_every_bad_field_is_refused_by_name(body, message):
    with pytest.raises(BadRequest) as caught:
        _parse(body)
    assert message in str(caught.value)


def test_too_many_items_are_refused_before_any_is_decoded():
    # The sixth item would be a refusal of its own: the count comes first.
    body = {"kpi": [{"id": "a", "name": "c", "value": 1}] * 5 + [{"nonsense": True}]}
    with pytest.raises(BadRequest, match=r"kpi: 6 items, more than the 5 one request may carry"):
        _parse(body)


def test_a_body_that_is_not_json_is_refused():
    with pytest.raises(BadRequest, match="kpi body"):
        parse_kpis(b"{nope", 5)
