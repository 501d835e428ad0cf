"""LiveQuality over real segments written by the capture writer: ``unmatched``, the labels of a post that name no
captured row as of now (rows still queued are not seen yet; a capture history past the scan limit is not counted),
and the report's refusal of a window that would list too many windows."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tests.capture.conftest import batch, db, index, root  # noqa: F401 - fixtures
from tests.helpers import write_config

from driftline.capture import CaptureReader, CaptureWriter
from driftline.errors import BadRequest
from driftline.feedback import service
from driftline.feedback.service import LiveQuality
from driftline.repository import Repository
from driftline.repository.demo import build_classifier_onnx
from driftline.serving.table import ModelTable
from driftline.store.feedback import Feedback, FeedbackStore


@pytest.fixture
def table(tmp_path, iris_weights):
    loop = asyncio.new_event_loop()
    build_classifier_onnx(tmp_path / "models" / "iris" / "1" / "model.onnx", *iris_weights)
    write_config(tmp_path / "models" / "iris", '[quality]\ntask = "classification"\nlabel_output = "label"\n')
    yield ModelTable(Repository(tmp_path / "models"), loop)
    loop.close()


def _label(request_id: str | None = None, row: int | None = 0, entity: str | None = None) -> Feedback:
    return Feedback(target="1", request_id=request_id, row=None if entity else row, entity=entity)


def test_counts_distinct_keys_without_a_written_row(root, index, db, table):  # noqa: F811
    writer = CaptureWriter(root, index, queue_rows=1000, segment_rows=1000, segment_seconds=3600)
    for i in range(6):
        writer.submit(batch(f"r{i}", rows=2, entity=f"c{i % 2}"))
    live = LiveQuality(table, FeedbackStore(db), CaptureReader(root, index))
    items = [
        _label("r0", 0),
        _label("r0", 1),
        _label("r0", 1),  # the same key twice counts once
        _label("r1", 5),  # a captured request, a row it does not have
        _label("nope", 0),
        _label(entity="c1"),
        _label(entity="c9"),
    ]
    # Nothing written yet: every key is unmatched as of now.
    assert live.unmatched("iris", items) == 6
    assert writer.flush(30)
    assert live.unmatched("iris", items) == 3  # r1 row 5, nope, c9
    assert live.unmatched("other", items) == 6
    writer.close(30)


def test_past_the_scan_limit_the_count_is_left_out(root, index, db, table, monkeypatch):  # noqa: F811
    writer = CaptureWriter(root, index, queue_rows=1000, segment_rows=1000, segment_seconds=3600)
    for i in range(3):
        writer.submit(batch(f"r{i}", rows=4))
    assert writer.flush(30)
    writer.close(30)
    live = LiveQuality(table, FeedbackStore(db), CaptureReader(root, index))
    assert live.unmatched("iris", [_label("r0")]) == 0
    monkeypatch.setattr(service, "UNMATCHED_SCAN_ROWS", 11)
    assert live.unmatched("iris", [_label("r0")]) is None


def test_a_server_that_captures_nothing_counts_every_label(db, table):  # noqa: F811
    live = LiveQuality(table, FeedbackStore(db), None)
    assert live.unmatched("iris", [_label("a"), _label("a"), _label(entity="e")]) == 2


def test_a_window_that_would_list_too_many_windows_is_refused(root, index, db, table, monkeypatch):  # noqa: F811
    writer = CaptureWriter(root, index, queue_rows=1000, segment_rows=1000, segment_seconds=3600)
    t0 = 1_780_000_000_000_000
    for i in range(30):
        writer.submit(batch(f"r{i}", rows=1, ts_us=t0 + i * 60_000_000))  # a row a minute
    assert writer.flush(30)
    writer.close(30)
    labels = FeedbackStore(db)
    labels.put("iris", [Feedback(target="1", request_id=f"r{i}", row=0) for i in range(30)])
    live = LiveQuality(table, labels, CaptureReader(root, index))
    assert len(live.report("iris", window=3).versions[0].windows) == 10
    assert len(live.report("iris", window=timedelta(minutes=1)).versions[0].windows) == 30
    monkeypatch.setattr(service, "MAX_WINDOWS", 20)
    assert len(live.report("iris", window=2).versions[0].windows) == 15  # bounded by 30 // 2 + 1 = 16 <= 20
    for window in (1, timedelta(seconds=30)):  # 31 windows at most; 30 (a minute each, by time)
        with pytest.raises(BadRequest, match=r"window .* more than 20"):
            live.report("iris", window=window)
