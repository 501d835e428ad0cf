"""LiveQuality.unmatched: the labels of a post that name no captured row as of now, over real segments written by the
capture writer; rows still queued are not seen yet, and a capture history past the scan limit is not counted."""

from __future__ import annotations

import asyncio

import pytest
from tests.capture.conftest import batch, db, index, root  # noqa: F401 - fixtures

from driftline.capture import CaptureReader, CaptureWriter
from driftline.feedback import service
from driftline.feedback.service import LiveQuality
from driftline.repository import Repository
from driftline.serving.table import ModelTable
from driftline.store.feedback import Feedback, FeedbackStore


@pytest.fixture
def table(tmp_path):
    loop = asyncio.new_event_loop()
    (tmp_path / "models").mkdir()
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
