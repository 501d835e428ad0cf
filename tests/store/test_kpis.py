"""The kpi_events table on a real SQLite file: events are sums (the same one twice is two), an event_id makes a
post idempotent, a failed put stores nothing, the frame's columns, erasure by entity."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from driftline.store.db import open_database
from driftline.store.kpis import FRAME_SCHEMA, KpiEvent, KpiStore

AT_US = 1_780_000_000_000_000


@pytest.fixture
def store(tmp_path: Path, store_at):
    db = open_database(store_at("driftline.db"))
    yield KpiStore(db)
    db.close()


def test_the_same_event_twice_is_stored_twice(store: KpiStore):
    event = KpiEvent(name="conversion", value=1.0, request_id="r1", at_us=AT_US)
    assert store.put("iris", [event, event]) == 2
    assert store.put("iris", [event]) == 1
    frame = store.frame("iris")
    assert frame.height == 3
    assert frame["value"].sum() == 3.0


def test_an_event_id_again_replaces_its_event_and_counts_once(store: KpiStore):
    first = KpiEvent(name="revenue", value=10.0, entity="u1", at_us=AT_US, event_id="order-1")
    later = KpiEvent(name="revenue", value=12.5, entity="u1", at_us=AT_US + 1, event_id="order-1")
    other = KpiEvent(name="revenue", value=1.0, entity="u1", at_us=AT_US, event_id="order-2")
    assert store.put("iris", [first, other, later]) == 2  # the last of order-1 in one body, once
    assert store.put("iris", [first]) == 1  # a retry of the first: replaces, still one event
    assert sorted(store.frame("iris")["value"].to_list()) == [1.0, 10.0]
    # The key is per model: another model's order-1 is another event.
    assert store.put("mlp", [later]) == 1
    assert store.frame("mlp")["value"].to_list() == [12.5]
    assert store.frame("iris").height == 2


def test_a_put_with_a_bad_event_stores_none(store: KpiStore):
    good = KpiEvent(name="c", value=1.0, request_id="r1")
    with pytest.raises(ValueError, match="exactly one"):
        store.put("iris", [good, KpiEvent(name="c", value=1.0, request_id="r2", entity="u")])
    with pytest.raises(ValueError, match="exactly one"):
        store.put("iris", [good, KpiEvent(name="c", value=1.0)])
    assert store.frame("iris").height == 0


def test_the_frame_has_its_schema_and_at_defaults_to_received(store: KpiStore):
    assert store.frame("iris").schema == FRAME_SCHEMA
    before = datetime.fromtimestamp(time.time() - 1, UTC)
    store.put("iris", [KpiEvent(name="c", value=2.0, request_id="r1"), KpiEvent(name="d", value=-1.5, entity="u")])
    store.put("iris", [KpiEvent(name="c", value=3.0, request_id="r2", at_us=AT_US)])
    frame = store.frame("iris")
    assert frame.schema == FRAME_SCHEMA
    assert frame.select("name", "value", "request_id", "entity").rows() == [
        ("c", 2.0, "r1", None),
        ("d", -1.5, None, "u"),
        ("c", 3.0, "r2", None),
    ]
    received = frame["at"].head(2).to_list()
    assert all(before <= at <= datetime.now(UTC) for at in received)
    assert frame["at"][2] == pl.Series([AT_US]).cast(FRAME_SCHEMA["at"])[0]


def test_erasure_removes_the_entitys_events_and_those_of_its_requests(store: KpiStore):
    store.put(
        "iris",
        [
            KpiEvent(name="c", value=1.0, entity="u1"),
            KpiEvent(name="c", value=1.0, entity="u2"),
            KpiEvent(name="c", value=1.0, request_id="r-of-u1"),
            KpiEvent(name="c", value=1.0, request_id="r-other"),
        ],
    )
    store.put("mlp", [KpiEvent(name="c", value=1.0, entity="u1"), KpiEvent(name="c", value=1.0, request_id="r-of-u1")])
    assert store.erase_entity("u1", [("iris", "r-of-u1")]) == 3
    assert store.frame("iris").select("request_id", "entity").rows() == [(None, "u2"), ("r-other", None)]
    assert store.frame("mlp").select("request_id", "entity").rows() == [("r-of-u1", None)]
