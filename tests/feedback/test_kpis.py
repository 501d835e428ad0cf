"""KPI attribution over real segments written by the capture writer: by request id, by entity (latest request at or
before the event, else the first after), never to a shadow row, once the capture is written whenever the event
came; windows; the post's unattributed count (per event, bounded like feedback's scan); the summary."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from tests.capture.conftest import batch, db, index, root  # noqa: F401 - fixtures
from tests.helpers import write_config

from driftline.capture import CaptureReader, CaptureWriter
from driftline.errors import ModelNotFound
from driftline.feedback import kpis as kpis_module
from driftline.feedback.kpis import Kpis, KpiTotals, KpiVersion
from driftline.repository import Repository
from driftline.repository.demo import build_classifier_onnx
from driftline.serving.table import ModelTable
from driftline.store.kpis import KpiEvent, KpiStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def table(tmp_path, iris_weights):
    loop = asyncio.new_event_loop()
    build_classifier_onnx(tmp_path / "models" / "iris" / "1" / "model.onnx", *iris_weights)
    write_config(tmp_path / "models" / "iris", "max_batch_size = 8\n")  # no [quality]: KPIs do not need it
    yield ModelTable(Repository(tmp_path / "models"), loop)
    loop.close()


@pytest.fixture
def writer(root, index):  # noqa: F811
    w = CaptureWriter(root, index, queue_rows=1000, segment_rows=1000, segment_seconds=3600)
    yield w
    w.close(30)


def _request(request_id: str, version: int, hours: float, entity: str | None = None, arm: str = "canary"):
    return dataclasses.replace(batch(request_id, rows=2, version=version, ts_us=_us(_h(hours)), entity=entity), arm=arm)


def _event(name: str, value: float, hours: float, request_id: str | None = None, entity: str | None = None):
    return KpiEvent(name=name, value=value, request_id=request_id, entity=entity, at_us=_us(_h(hours)))


def _versions(frame: pl.DataFrame) -> list[int | None]:
    return frame["version"].to_list()


def test_events_attribute_once_the_capture_is_written_by_id_and_by_entity(root, index, db, writer):  # noqa: F811
    kpis = Kpis(KpiStore(db), CaptureReader(root, index))
    for request in (
        _request("a", 1, 0, entity="u1"),
        _request("b", 2, 2, entity="u1"),
        _request("c", 2, 4, entity="u2"),
        _request("s", 1, 1, arm="default"),
        _request("s", 2, 1, arm="shadow"),  # the shadow's copy of request s: the user saw version 1
        _request("only-shadow", 2, 1, arm="shadow"),
    ):
        writer.submit(request)
    events = [
        _event("conversion", 1, 0.5, request_id="a"),
        _event("conversion", 1, 1, entity="u1"),  # u1's latest request at or before 1h: a (version 1)
        _event("conversion", 1, 3, entity="u1"),  # ... at or before 3h: b (version 2)
        _event("revenue", 5, 0, entity="u2"),  # u2 had no request yet: its first one after, c (version 2)
        _event("revenue", 7, 30 * 24, request_id="c"),  # a month later: still c's version
        _event("conversion", 1, 2, request_id="s"),
        _event("conversion", 1, 2, request_id="only-shadow"),
        _event("conversion", 1, 2, request_id="nobody"),
        _event("conversion", 1, 2, entity="u-nobody"),
    ]
    counts = kpis.put("iris", events)
    assert (counts.stored, counts.unattributed) == (9, 9)  # nothing written yet: every event, as of now
    before = kpis.attributed("iris")
    assert _versions(before.frame) == [None] * 9
    assert before.unattributed == {"conversion": 7, "revenue": 2}

    assert writer.flush(30)
    found = kpis.attributed("iris")
    assert _versions(found.frame) == [1, 1, 2, 2, 2, 1, None, None, None]
    assert found.unattributed == {"conversion": 3, "revenue": 0}
    # Each event's other key comes from the request it went to: the entity's request, the request's entity.
    assert found.frame["request_id"].to_list() == ["a", "a", "b", "c", "c", "s", "only-shadow", "nobody", None]
    assert found.frame["entity"].to_list() == ["u1", "u1", "u1", "u2", "u2", None, None, None, "u-nobody"]
    assert found.frame.schema == pl.Schema(
        {
            "name": pl.String(),
            "value": pl.Float64(),
            "at": pl.Datetime("us", "UTC"),
            "version": pl.Int32(),
            "request_id": pl.String(),
            "entity": pl.String(),
        }
    )
    assert kpis.unattributed("iris", events) == 3  # only-shadow, nobody, u-nobody
    assert kpis.unattributed("iris", [events[-1], events[-1]]) == 2  # per event: KPIs are sums


def test_a_window_attributes_among_its_requests_and_keeps_its_own_unattributed(root, index, db, writer):  # noqa: F811
    kpis = Kpis(KpiStore(db), CaptureReader(root, index))
    writer.submit(_request("early", 1, 0, entity="u1"))
    writer.submit(_request("late", 2, 10, entity="u1"))
    assert writer.flush(30)
    kpis.put(
        "iris",
        [
            _event("conversion", 1, 1, request_id="early"),
            _event("conversion", 1, 12, request_id="late"),
            _event("conversion", 1, 5, entity="u1"),  # all time: early's version; from 8h on: late's
            _event("conversion", 1, 9, request_id="nobody"),  # in the window, claimed by no request
            _event("conversion", 1, 2, request_id="nobody-before"),  # before the window: not its business
        ],
    )
    everything = kpis.attributed("iris")
    assert _versions(everything.frame) == [1, 2, 1, None, None]
    window = kpis.attributed("iris", since=_h(8), until=_h(20))
    assert window.frame["request_id"].to_list() == ["late", "late", "nobody"]
    assert _versions(window.frame) == [2, 2, None]
    assert window.unattributed == {"conversion": 1}
    assert _versions(kpis.attributed("iris", until=_h(8)).frame) == [1, 1, None]  # early, u1, nobody-before


def test_the_summary_per_kpi_and_version(root, index, db, writer):  # noqa: F811
    kpis = Kpis(KpiStore(db), CaptureReader(root, index))
    for i in range(4):
        writer.submit(_request(f"r{i}", 1 + i % 2, i))
    assert writer.flush(30)
    kpis.put(
        "iris",
        [
            _event("revenue", 10, 5, request_id="r0"),
            _event("revenue", 2.5, 5, request_id="r2"),
            _event("revenue", 4, 5, request_id="r1"),
            _event("conversion", 1, 5, request_id="r3"),
            _event("conversion", 1, 5, request_id="gone"),
        ],
    )
    summary = kpis.summary("iris")
    assert summary.kpis == [
        KpiTotals("conversion", 1, [KpiVersion(version=2, events=1, sum=1.0, mean=1.0)]),
        KpiTotals(
            "revenue",
            0,
            [KpiVersion(version=1, events=2, sum=12.5, mean=6.25), KpiVersion(version=2, events=1, sum=4.0, mean=4.0)],
        ),
    ]
    assert (summary.model, summary.since, summary.until) == ("iris", None, None)
    huge = [_event("revenue", 1.7e308, 5, request_id="r0")] * 2
    kpis.put("iris", huge)  # a sum past a float's range is null, not infinity (JSON has none)
    assert kpis.summary("iris").kpis[1].versions[0] == KpiVersion(version=1, events=4, sum=None, mean=None)


def test_past_the_scan_limit_the_count_is_left_out(root, index, db, writer, monkeypatch):  # noqa: F811
    kpis = Kpis(KpiStore(db), CaptureReader(root, index))
    for i in range(3):
        writer.submit(_request(f"r{i}", 1, i))
    assert writer.flush(30)
    event = _event("c", 1, 0, request_id="r0")
    assert kpis.put("iris", [event]).unattributed == 0
    monkeypatch.setattr(kpis_module, "UNMATCHED_SCAN_ROWS", 5)
    assert kpis.put("iris", [event]).unattributed is None
    assert kpis.attributed("iris").unattributed == {"c": 0}  # the read is not bounded: it attributes both


def test_a_server_that_captures_nothing_counts_every_event_and_needs_a_known_model(db, table):  # noqa: F811
    kpis = Kpis(KpiStore(db), None)
    event = _event("c", 1, 0, request_id="r0")
    assert kpis.put("iris", [event, event]).unattributed == 2
    assert kpis.summary("iris").kpis == [KpiTotals("c", 2, [])]
    table.require_known("iris")  # the route's check: a KPI needs the model, not its [quality]
    with pytest.raises(ModelNotFound, match="nosuch"):
        table.require_known("nosuch")
