"""What the writer does with one drain of its queue: many requests converted column-wide, the same rows as one by
one, split by kept columns, the bad ones dropped and counted; and what the request path's hook queues."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tests.capture.conftest import batch

from driftline.capture import CaptureBatch, CaptureReader, CaptureService, CaptureWriter
from driftline.capture.rows import to_table, to_table_many
from driftline.config import CaptureSettings
from driftline.repository.layout import Repository
from driftline.store.captures import CaptureIndex

T0 = 1_780_000_000_000_000  # µs: 2026-05-28


def _fields(b: CaptureBatch, **change: object) -> CaptureBatch:
    return CaptureBatch(**{**{name: getattr(b, name) for name in CaptureBatch.__slots__}, **change})


def _varied(i: int) -> CaptureBatch:
    rows = 1 + i % 3
    return _fields(
        batch(f"r{i}", rows=rows, ts_us=T0 + i, entity=None if i % 2 else f"e{i}", seed=i),
        arm=("default", "canary", "split", "shadow")[i % 4],
        inputs={
            "x": np.arange(rows * 4, dtype=np.float32).reshape(rows, 4) + i,
            "img": np.arange(rows * 6, dtype=np.uint8).reshape(rows, 2, 3),
            "t": np.array([f"w{i}-{r}" for r in range(rows)], dtype=object),
        },
    )


def test_the_column_wide_conversion_makes_the_rows_of_the_one_by_one_conversion():
    batches = [_varied(i) for i in range(12)]
    column_wide = to_table_many(batches)
    one_by_one = pa.concat_tables([to_table(b) for b in batches])
    assert column_wide.schema.equals(one_by_one.schema)
    assert column_wide.to_pylist() == one_by_one.to_pylist()
    # A one-row output given without its batch dimension sends the lot down the entry-by-entry path: same rows.
    flat = _fields(_varied(12), rows=1, outputs={"label": np.int64(2), "probabilities": np.zeros(3)})
    flat = _fields(flat, inputs={k: v[:1] for k, v in flat.inputs.items()})
    exact = to_table_many([*batches, flat])
    assert exact.slice(0, column_wide.num_rows).to_pylist() == column_wide.to_pylist()
    assert exact.to_pylist()[-1]["out.label"] == 2


def test_utf8_bytes_and_str_text_in_one_segment_are_both_written_and_capture_goes_on(root: Path, index: CaptureIndex):
    # Text tensors arrive as bytes or as str; numpy joins the two only as ASCII, so joining them whole used to stop
    # capture for good on the first non-ASCII byte string.
    first = _fields(batch("bytes", rows=1, ts_us=T0), inputs={"t": np.array([b"caf\xc3\xa9"])})
    second = _fields(batch("str", rows=1, ts_us=T0 + 1), inputs={"t": np.array(["thé"])})
    writer = CaptureWriter(root, index, queue_rows=100, segment_rows=100, segment_seconds=3600)
    assert writer.submit(first)
    assert writer.submit(second)
    assert writer.close(30)
    figures = writer.figures()
    assert (figures.captured, figures.dropped, figures.failed) == (2, 0, None)
    frame = CaptureReader(root, index).frame("iris").sort("request_id")
    assert frame["in.t"].to_list() == ["café", "thé"]


def test_one_drain_of_mixed_batches_splits_by_columns_and_drops_only_the_bad(root: Path, index: CaptureIndex):
    good = [batch(f"a{i}", rows=2, ts_us=T0 + i) for i in range(5)]
    wider = [_fields(batch(f"b{i}", ts_us=T0 + 10 + i), inputs={"x": np.zeros((2, 4), np.float64)}) for i in range(3)]
    bad = [
        _fields(batch("rows"), inputs={"x": np.zeros((5, 4), np.float32)}),  # 5 rows for a batch of 2
        _fields(batch("arm"), arm="sideways"),
        _fields(batch("name"), model="../escape"),
        # A list, not an array: converted (to float64, as the wider batches), not refused.
        _fields(batch("kind", ts_us=T0 + 20), inputs={"x": [[0.0] * 4] * 2}),
    ]
    writer = CaptureWriter(root, index, queue_rows=1000, segment_rows=1000, segment_seconds=3600)
    for b in [*good[:3], bad[0], *wider, bad[1], *good[3:], bad[2], bad[3]]:
        assert writer.submit(b)
    assert writer.close(30)
    figures = writer.figures()
    assert (figures.captured, figures.dropped, figures.failed) == (10 + 6 + 2, 6, None)
    segments = index.segments("iris")
    rows_by_type: dict[str, int] = {}
    for segment in segments:  # float64 inputs never share a segment with float32 ones (however the drains fell)
        kind = str(pq.read_schema(root / segment.path).field("in.x").type.value_type)
        rows_by_type[kind] = rows_by_type.get(kind, 0) + segment.rows
    assert rows_by_type == {"float": 10, "double": 8}
    frame = CaptureReader(root, index).frame("iris")
    assert sorted(set(frame["request_id"].to_list())) == sorted([b.request_id for b in good + wider] + ["kind"])
    assert not (root.parent / "escape").exists()


def test_take_queues_only_the_planned_tensors_and_never_an_excluded_input(root: Path, index: CaptureIndex, repo: Path):
    service = CaptureService(root, index, CaptureSettings(enabled=True, exclude=["ssn"], outputs=["label"]))
    plan = service.plan("iris", 1, Repository(repo).model("iris"))  # iris's config.toml has no [capture]
    assert plan is not None
    inputs = {"x": np.ones((2, 4), np.float32), "ssn": np.array(["123", "456"], dtype=object)}
    outputs = {"label": np.array([1, 2]), "probabilities": np.zeros((2, 3))}
    service.take(plan, ("iris", 1, "ab" * 32), "q", "default", (T0, 7), 2, inputs, outputs, "cust")
    service.close()
    frame = CaptureReader(root, index).frame("iris")
    assert [c for c in frame.columns if c.startswith(("in.", "out."))] == ["in.x", "out.label"]
    assert frame["out.label"].to_list() == [1, 2]
    assert frame["entity"].to_list() == ["cust", "cust"]
    assert frame["latency_us"].to_list() == [7, 7]
    assert set(inputs) == {"x", "ssn"}  # the request's own mappings are left as they were


def test_requests_converted_by_the_submitting_thread_come_back_whole(root: Path, index: CaptureIndex):
    # More requests than one chunk: most are converted by this thread as it submits, the rest by the writer.
    batches = [_varied(i) for i in range(700)]
    bad = _fields(batch("bad", ts_us=T0), inputs={"x": np.zeros((5, 4), np.float32)})
    writer = CaptureWriter(root, index, queue_rows=10_000, segment_rows=500, segment_seconds=3600)
    for i, b in enumerate(batches):
        assert writer.submit(b)
        if i == 300:
            assert writer.submit(bad)  # queued; dropped and counted when its chunk is converted
    assert writer.flush(30)
    assert writer.close(30)
    figures = writer.figures()
    total = sum(b.rows for b in batches)
    assert (figures.captured, figures.dropped, figures.queue_rows, figures.failed) == (total, 2, 0, None)
    frame = CaptureReader(root, index).frame("iris").sort("ts", "row")
    assert frame["request_id"].to_list() == [b.request_id for b in batches for _ in range(b.rows)]
    assert frame["in.t"].to_list() == [t for b in batches for t in b.inputs["t"].tolist()]
    assert frame["arm"].to_list() == [b.arm for b in batches for _ in range(b.rows)]
