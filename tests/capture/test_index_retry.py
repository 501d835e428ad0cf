"""Capture on a shared PostgreSQL store that drops its connections (a restart): the segment written meanwhile is
indexed on a retry and capture goes on, rather than stopping for good."""

from __future__ import annotations

from pathlib import Path

import psycopg
from tests.capture.conftest import batch

from driftline.capture import CaptureWriter
from driftline.store.captures import CaptureIndex
from driftline.store.db import open_database


def _drop_connections(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.rsplit("/", 1)[1],),
        )


def test_a_dropped_store_connection_does_not_stop_capture(tmp_path: Path, postgres) -> None:
    url = postgres.new_database()
    index = CaptureIndex(open_database(url))
    writer = CaptureWriter(tmp_path, index, queue_rows=100, segment_rows=1, segment_seconds=3600)
    try:
        assert writer.submit(batch("before"))
        assert writer.flush(30)
        _drop_connections(url)  # the next statement fails; the retry connects again
        assert writer.submit(batch("after"))
        assert writer.flush(30)
        assert writer.submit(batch("later"))
        assert writer.flush(30)
    finally:
        assert writer.close(30)
        assert writer.failed is None
    assert len(index.segments("iris")) == 3
