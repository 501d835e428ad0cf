"""Retention deletes whole oldest segments beyond an age or a size; erasure removes exactly one entity's rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.capture.conftest import DAY_US, batch

from driftline.capture import CaptureReader, CaptureWriter, enforce_retention, erase_entity
from driftline.store.captures import CaptureIndex, describe_segment

T0 = 1_780_000_000_000_000


def _segments_per_day(root: Path, index: CaptureIndex, days: int, model: str = "iris") -> None:
    writer = CaptureWriter(root, index, queue_rows=100, segment_rows=100, segment_seconds=3600)
    for day in range(days):
        assert writer.submit(batch(f"{model}-d{day}", rows=3, model=model, ts_us=T0 + day * DAY_US, seed=day))
        assert writer.flush(30)
    assert writer.close(30)


def _ids(root: Path, index: CaptureIndex, model: str = "iris") -> list[str]:
    return sorted(set(CaptureReader(root, index).frame(model)["request_id"].to_list()))


def test_retention_by_age_deletes_whole_segments_older_than_the_limit(root: Path, index: CaptureIndex):
    _segments_per_day(root, index, 5)
    now = T0 + 4 * DAY_US + 1
    assert enforce_retention(root, index, max_age_s=2.5 * 86_400, max_bytes=None, now_us=now) == 2
    assert _ids(root, index) == ["iris-d2", "iris-d3", "iris-d4"]
    kept = {s.path for s in index.segments("iris")}
    assert {p.relative_to(root).as_posix() for p in root.rglob("*.parquet")} == kept  # files deleted with rows
    assert sorted(s.day for s in index.segments("iris")) == ["2026-05-30", "2026-05-31", "2026-06-01"]
    assert enforce_retention(root, index, max_age_s=2.5 * 86_400, max_bytes=None, now_us=now) == 0


def test_retention_by_bytes_deletes_the_oldest_until_within_the_limit(root: Path, index: CaptureIndex):
    _segments_per_day(root, index, 4)
    sizes = [s.bytes for s in index.by_age()]
    limit = sum(sizes[-2:])  # room for the two newest exactly
    assert enforce_retention(root, index, max_age_s=None, max_bytes=limit) == 2
    assert _ids(root, index) == ["iris-d2", "iris-d3"]
    assert index.total_bytes() == limit == sum(p.stat().st_size for p in root.rglob("*.parquet"))
    assert enforce_retention(root, index, max_age_s=None, max_bytes=1) == 2
    assert index.segments() == []
    assert list(root.rglob("*.parquet")) == []


def test_retention_of_one_model_leaves_the_others(root: Path, index: CaptureIndex):
    _segments_per_day(root, index, 2, model="iris")
    _segments_per_day(root, index, 2, model="mlp")
    assert enforce_retention(root, index, max_age_s=None, max_bytes=1, model="mlp") == 2
    assert _ids(root, index, "iris") == ["iris-d0", "iris-d1"]
    assert _ids(root, index, "mlp") == []


def test_retention_of_a_segment_already_gone_still_forgets_it(root: Path, index: CaptureIndex):
    _segments_per_day(root, index, 2)
    (root / index.by_age()[0].path).unlink()
    assert enforce_retention(root, index, max_age_s=None, max_bytes=1) == 2
    assert index.segments() == []


def test_erasure_removes_exactly_the_entitys_rows(root: Path, index: CaptureIndex):
    writer = CaptureWriter(root, index, queue_rows=1000, segment_rows=1000, segment_seconds=3600)
    entities = ["alice", "bob", None, "alice-2"]
    for day in range(3):
        for i, entity in enumerate(entities):
            assert writer.submit(batch(f"d{day}-{i}", rows=2, entity=entity, ts_us=T0 + day * DAY_US + i))
        assert writer.flush(30)
    # A segment of alice alone: deleted whole.
    assert writer.submit(batch("only-alice", rows=3, entity="alice", ts_us=T0 + 5 * DAY_US))
    assert writer.close(30)
    before = CaptureReader(root, index).frame("iris")

    assert erase_entity(root, index, "alice") == 3 * 2 + 3
    after = CaptureReader(root, index).frame("iris")
    assert "alice" not in after["entity"].to_list()
    assert after.sort(["request_id", "row"]).equals(
        before.filter((before["entity"] != "alice") | before["entity"].is_null()).sort(["request_id", "row"])
    )
    segments = index.segments("iris")
    assert len(segments) == 3
    assert len(list(root.rglob("*.parquet"))) == 3
    for segment in segments:  # each rewritten segment's index row matches its file exactly
        assert describe_segment(root, segment.path) == segment
    assert not [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".parquet")]
    assert erase_entity(root, index, "alice") == 0
    assert erase_entity(root, index, "nobody") == 0


@pytest.mark.parametrize("entity", ["bob", "alice-2"])
def test_erasure_does_not_touch_segments_without_the_entity(root: Path, index: CaptureIndex, entity: str):
    _segments_per_day(root, index, 2)  # no entity at all
    before = {s.path: s for s in index.segments()}
    mtimes = {p: (root / p).stat().st_mtime_ns for p in before}
    assert erase_entity(root, index, entity) == 0
    assert {s.path: s for s in index.segments()} == before
    assert {p: (root / p).stat().st_mtime_ns for p in before} == mtimes
