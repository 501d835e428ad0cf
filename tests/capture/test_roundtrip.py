"""Rows -> segments -> reader: the same rows back, by the index alone, as a frame, Parquet and JSON lines."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from tests.capture.conftest import DAY_US, batch

from driftline.capture import CaptureBatch, CaptureReader, CaptureWriter, keep_tensors
from driftline.capture.rows import FIXED, to_table
from driftline.store.captures import CaptureIndex

T0 = 1_780_000_000_000_000  # µs: 2026-05-28


def _expected(batches: list[CaptureBatch]) -> list[dict[str, object]]:
    rows = []
    for b in batches:
        for i in range(b.rows):
            rows.append(
                {
                    "request_id": b.request_id,
                    "row": i,
                    "version": b.version,
                    "entity": b.entity,
                    "in.x": b.inputs["x"][i].tolist(),
                    "out.label": int(b.outputs["label"][i]),
                    "out.probabilities": b.outputs["probabilities"][i].tolist(),
                }
            )
    return rows


def _rows(frame: pl.DataFrame) -> list[dict[str, object]]:
    keys = ["request_id", "row", "version", "entity", "in.x", "out.label", "out.probabilities"]
    return sorted(frame.select(keys).to_dicts(), key=lambda r: (r["request_id"], r["row"]))


def test_rows_come_back_equal_through_segments(root: Path, index: CaptureIndex):
    batches = [
        batch(f"r{i:03d}", rows=1 + i % 4, version=1 + i % 2, ts_us=T0 + i * 1000, entity=f"c{i % 3}", seed=i)
        for i in range(60)
    ]
    writer = CaptureWriter(root, index, queue_rows=1000, segment_rows=25, segment_seconds=3600)
    assert all(writer.submit(b) for b in batches)
    assert writer.flush(30)
    assert writer.close(30)
    figures = writer.figures()
    total = sum(b.rows for b in batches)
    assert (figures.captured, figures.dropped, figures.queue_rows, figures.failed) == (total, 0, 0, None)
    segments = index.segments("iris")
    assert len(segments) == figures.segments >= 2
    assert sum(s.rows for s in segments) == total
    assert figures.bytes == sum(s.bytes for s in segments) == sum((root / s.path).stat().st_size for s in segments)
    assert all(s.path.startswith(f"model=iris/version={s.version}/day=2026-05-28/") for s in segments)

    reader = CaptureReader(root, index)
    frame = reader.frame("iris")
    assert _rows(frame) == sorted(_expected(batches), key=lambda r: (r["request_id"], r["row"]))
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    assert frame.schema["row"] == pl.Int32
    assert frame.schema["version"] == pl.Int32
    assert frame["sha256"].unique().to_list() == ["ab" * 32]
    assert frame["arm"].unique().to_list() == ["alias"]

    v2 = reader.frame("iris", version=2)
    assert set(v2["version"].to_list()) == {2}
    assert v2.height == sum(b.rows for b in batches if b.version == 2)
    since = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=T0 + 10 * 1000)
    until = since + timedelta(microseconds=20 * 1000)
    window = reader.frame("iris", since=since, until=until)
    assert sorted(set(window["request_id"].to_list())) == [f"r{i:03d}" for i in range(10, 30)]
    assert reader.frame("other").height == 0
    assert reader.frame("other").columns == FIXED.names

    out = root.parent / "export.parquet"
    assert reader.export(out, "parquet", "iris") == total
    assert _rows(pl.read_parquet(out)) == _rows(frame)
    sink = io.BytesIO()
    assert reader.export(sink, "jsonl", "iris", version=1) == frame.height - v2.height
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert {line["version"] for line in lines} == {1}
    assert lines[0]["ts"].endswith("+00:00")


def test_segments_split_by_day_and_by_kept_columns_and_exports_unify_them(root: Path, index: CaptureIndex):
    first = batch("a", ts_us=T0)
    next_day = batch("b", ts_us=T0 + DAY_US)
    fewer = CaptureBatch(**{**_fields(batch("c", ts_us=T0 + 1)), "outputs": {}})  # outputs no longer kept
    writer = CaptureWriter(root, index, queue_rows=100, segment_rows=100, segment_seconds=3600)
    for b in (first, next_day, fewer):
        assert writer.submit(b)
    assert writer.close(30)
    days = sorted(s.day for s in index.segments("iris"))
    assert days == ["2026-05-28", "2026-05-28", "2026-05-29"]
    reader = CaptureReader(root, index)
    out = root.parent / "all.parquet"
    assert reader.export(out, "parquet", "iris") == 6
    table = pq.read_table(out)
    by_id = {r["request_id"]: r for r in table.to_pylist()}
    assert by_id["c"]["out.label"] is None
    assert by_id["a"]["out.label"] is not None
    assert reader.frame("iris").height == 6


def _fields(b: CaptureBatch) -> dict[str, object]:
    return {name: getattr(b, name) for name in CaptureBatch.__slots__}


def test_tensor_slices_become_numbers_lists_nested_lists_and_strings():
    b = CaptureBatch(
        model="m",
        version=3,
        sha256="cd" * 32,
        request_id="q",
        arm="canary",
        ts_us=T0,
        latency_us=5,
        rows=2,
        inputs={
            "s": np.array([1.5, 2.5], dtype=np.float16),
            "img": np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3),
            "empty": np.zeros((2, 0), dtype=np.float32),
            "text": np.array([b"caf\xc3\xa9", b"x"], dtype=object),
        },
        outputs={"flag": np.array([True, False])},
        entity="cust-1",
    )
    rows = to_table(b).to_pylist()
    assert rows[0]["in.s"] == 1.5
    assert rows[1]["in.img"] == [[6, 7, 8], [9, 10, 11]]
    assert rows[0]["in.empty"] == []
    assert rows[0]["in.text"] == "café"
    assert rows[1]["out.flag"] is False
    assert [r["row"] for r in rows] == [0, 1]
    assert {r["entity"] for r in rows} == {"cust-1"}
    whole = CaptureBatch(**{**_fields(b), "rows": 1, "inputs": {"w": np.arange(6).reshape(2, 3)}, "outputs": {}})
    assert to_table(whole).to_pylist()[0]["in.w"] == [[0, 1, 2], [3, 4, 5]]  # one row, no batch dimension


@pytest.mark.parametrize(
    ("change", "needle"),
    [({"arm": "sideways"}, "arm"), ({"inputs": {"x": np.zeros((3, 4))}}, "in.x")],
)
def test_a_batch_that_does_not_fit_the_shape_is_refused_naming_what(change: dict[str, object], needle: str):
    with pytest.raises(ValueError, match=needle):
        to_table(CaptureBatch(**{**_fields(batch("q")), **change}))


def test_a_bad_batch_is_dropped_and_counted_and_capture_goes_on(root: Path, index: CaptureIndex):
    writer = CaptureWriter(root, index, queue_rows=100, segment_rows=100, segment_seconds=3600)
    assert writer.submit(CaptureBatch(**{**_fields(batch("bad")), "model": "../escape"}))
    assert writer.submit(CaptureBatch(**{**_fields(batch("bad2")), "inputs": {"x": np.zeros((5, 4))}}))
    assert not writer.submit(None)  # type: ignore[arg-type]
    assert writer.submit(batch("good"))
    assert writer.close(30)
    figures = writer.figures()
    assert (figures.captured, figures.dropped, figures.failed) == (2, 4, None)
    assert not (root.parent / "escape").exists()
    assert CaptureReader(root, index).frame("iris")["request_id"].to_list() == ["good", "good"]


def test_keep_tensors_keeps_the_named_and_never_the_excluded():
    tensors = {"x": np.zeros(1), "ssn": np.zeros(1), "age": np.zeros(1)}
    assert list(keep_tensors(tensors, None, ["ssn"])) == ["x", "age"]
    assert list(keep_tensors(tensors, ["x", "ssn"], ["ssn"])) == ["x"]


def test_an_export_format_or_a_time_without_timezone_is_refused_naming_it(root: Path, index: CaptureIndex):
    reader = CaptureReader(root, index)
    sink = io.BytesIO()
    with pytest.raises(ValueError, match="format"):
        reader.export(sink, "csv", "iris")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="since must carry a timezone"):
        reader.frame("iris", since=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="until must carry a timezone"):
        reader.export(sink, "parquet", "iris", until=datetime(2026, 1, 1))
    assert sink.getvalue() == b""
    assert reader.export(sink, "parquet", "iris") == 0
    assert pq.read_table(io.BytesIO(sink.getvalue())).schema.names == FIXED.names  # an empty file, still valid


def test_a_segment_is_written_when_its_oldest_row_is_segment_seconds_old(root: Path, index: CaptureIndex):
    writer = CaptureWriter(root, index, queue_rows=1000, segment_rows=1000, segment_seconds=0.2)
    try:
        assert writer.submit(batch("lone", rows=1))
        deadline = time.monotonic() + 30
        while writer.figures().segments == 0 and time.monotonic() < deadline:  # no flush, no close: only its age
            time.sleep(0.05)
        assert writer.figures().captured == 1
        assert CaptureReader(root, index).frame("iris")["request_id"].to_list() == ["lone"]
    finally:
        assert writer.close(30)
