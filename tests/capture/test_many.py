"""Batches the writer converts together make the same rows as each converted alone."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from driftline.capture.rows import CaptureBatch, signature, to_table, to_table_many


def _batch(i: int, rows: int, *, entity: str | None = None, text: bool = True) -> CaptureBatch:
    inputs: dict[str, np.ndarray] = {"x": np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + i}
    if text:
        inputs["t"] = np.array([f"w{i}-{r}" for r in range(rows)], dtype=object)
    return CaptureBatch(
        model="m",
        version=2,
        sha256="ab" * 32,
        request_id=f"r{i}",
        arm=("default", "canary", "pinned")[i % 3],
        ts_us=1_000_000 + i,
        latency_us=10 * i,
        rows=rows,
        inputs=inputs,
        outputs={"y": np.full((rows,), i, dtype=np.int64)},
        entity=entity,
    )


def test_many_batches_convert_to_the_rows_each_converts_to():
    batches = [_batch(i, 1 + i % 4, entity=None if i % 2 else f"e{i}") for i in range(9)]
    together = to_table_many(batches)
    alone = pa.concat_tables([to_table(b) for b in batches])
    assert together.schema.equals(alone.schema)
    assert together.to_pylist() == alone.to_pylist()
    assert together.num_rows == sum(b.rows for b in batches)


def test_a_one_row_tensor_without_a_batch_dimension_joins_the_others():
    one = _batch(0, 1)
    flat = CaptureBatch(
        **{**{f: getattr(one, f) for f in CaptureBatch.__dataclass_fields__}, "outputs": {"y": np.int64(7)}}
    )
    assert signature(flat) == signature(_batch(1, 1))
    rows = to_table_many([flat, _batch(1, 2)]).to_pylist()
    assert [r["out.y"] for r in rows] == [7, 1, 1]
    assert [r["row"] for r in rows] == [0, 0, 1]


def test_batches_of_other_columns_are_refused_naming_the_batch():
    with pytest.raises(ValueError, match="r1"):
        to_table_many([_batch(0, 1), _batch(1, 1, text=False)])
