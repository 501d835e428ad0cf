"""Capture on a shared PostgreSQL store that drops its connections (a restart): the segment written meanwhile is
indexed on a retry and capture goes on, rather than stopping for good."""

from __future__ import annotations

from pathlib import Path

from tests.capture.conftest import batch
from tests.postgres import end_sessions

from driftline.capture import CaptureWriter
from driftline.store.captures import CaptureIndex
from driftline.store.db import open_database


def test_a_dropped_store_connection_does_not_stop_capture(tmp_path: Path, postgres) -> None:
    url = postgres.new_database()
    index = CaptureIndex(open_database(url))
    writer = CaptureWriter(tmp_path, index, queue_rows=100, segment_rows=1, segment_seconds=3600)
    try:
        assert writer.submit(batch("before"))
        assert writer.flush(30)
        assert end_sessions(url) >= 1  # the next statement fails; the retry connects again
        assert writer.submit(batch("after"))
        assert writer.flush(30)
        assert writer.submit(batch("later"))
        assert writer.flush(30)
    finally:
        assert writer.close(30)
        assert writer.failed is None
    assert len(index.segments("iris")) == 3
