"""The captured-row shape: what one inference hands to capture, and the Arrow table it becomes.

Every segment has the fixed columns of :data:`FIXED` first (the feedback join relies on ``request_id``, ``row``,
``model``, ``version`` and ``entity``), then one column per kept input ``in.<name>`` and output ``out.<name>``
holding that row's slice of the tensor: a number for a scalar, a list for a vector (lists of lists beyond), a
string for BYTES.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from numpy.typing import NDArray

__all__ = ["ARMS", "FIXED", "INPUT_PREFIX", "OUTPUT_PREFIX", "TS", "CaptureBatch", "day_of", "keep_tensors", "to_table"]

# How the request reached its version (serving/routing.py's arms, plus an explicit pin and the default alias).
ARMS: Final = frozenset({"alias", "canary", "split", "shadow", "pinned", "default"})
TS: Final = pa.timestamp("us", tz="UTC")
FIXED: Final = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int32(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("arm", pa.string(), nullable=False),
        pa.field("latency_us", pa.int64(), nullable=False),
        pa.field("entity", pa.string()),
    ]
)
INPUT_PREFIX: Final = "in."
OUTPUT_PREFIX: Final = "out."
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CaptureBatch:
    """One request's rows as the data plane hands them over; converted to Arrow on the writer thread, not here.

    ``inputs`` and ``outputs`` hold only the kept tensors (:func:`keep_tensors`), each with ``rows`` as its first
    dimension (a request of one row may also give a tensor without one: the whole tensor is that row's value).
    """

    model: str
    version: int
    sha256: str
    request_id: str
    arm: str
    ts_us: int  # µs since the epoch, UTC: when the request arrived
    latency_us: int
    rows: int
    inputs: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    outputs: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    entity: str | None = None


def keep_tensors(
    tensors: Mapping[str, NDArray[Any]], keep: Collection[str] | None, exclude: Collection[str] = ()
) -> dict[str, NDArray[Any]]:
    """The tensors capture stores: those named in ``keep`` (all when None), never one named in ``exclude``."""
    return {name: arr for name, arr in tensors.items() if (keep is None or name in keep) and name not in exclude}


def day_of(ts_us: int) -> str:
    """The UTC day (``YYYY-MM-DD``) a timestamp in µs falls on: the segment's day partition."""
    return (_EPOCH + timedelta(microseconds=ts_us)).date().isoformat()


def to_table(batch: CaptureBatch) -> pa.Table:
    """The batch as rows of the capture shape.

    Raises:
        ValueError: an unknown arm, or a tensor whose first dimension is not the batch's row count.
    """
    if batch.arm not in ARMS:
        raise ValueError(f"arm must be one of {sorted(ARMS)}, got {batch.arm!r}")
    n = batch.rows
    columns: list[pa.Array] = [
        pa.array([batch.request_id] * n, pa.string()),
        pa.array(np.arange(n, dtype=np.int32)),
        pa.array([batch.model] * n, pa.string()),
        pa.array(np.full(n, batch.version, dtype=np.int32)),
        pa.array([batch.sha256] * n, pa.string()),
        pa.array(np.full(n, batch.ts_us, dtype=np.int64)).cast(TS),
        pa.array([batch.arm] * n, pa.string()),
        pa.array(np.full(n, batch.latency_us, dtype=np.int64)),
        pa.array([batch.entity] * n, pa.string()),
    ]
    fields = list(FIXED)
    for prefix, tensors in ((INPUT_PREFIX, batch.inputs), (OUTPUT_PREFIX, batch.outputs)):
        for name, arr in tensors.items():
            column = _column(np.asarray(arr), n, f"{prefix}{name}")
            fields.append(pa.field(f"{prefix}{name}", column.type))
            columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _column(arr: NDArray[Any], n: int, name: str) -> pa.Array:
    if arr.ndim == 0 or arr.shape[0] != n:
        if n != 1:
            raise ValueError(f"{name}: first dimension {arr.shape[:1]} is not the batch's {n} rows")
        arr = arr[np.newaxis]
    if arr.dtype.kind in "SUO":
        flat: pa.Array = pa.array([_text(v) for v in arr.reshape(-1)], pa.string())
    else:
        # Parquet readers disagree on half floats; float32 holds every float16 exactly.
        values = arr.astype(np.float32) if arr.dtype == np.float16 else arr
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    # Innermost dimension first: each level groups the one below into lists of that dimension's length.
    for depth in range(arr.ndim - 1, 0, -1):
        outer = int(np.prod(arr.shape[:depth]))
        offsets = np.arange(outer + 1, dtype=np.int32) * np.int32(arr.shape[depth])
        flat = pa.ListArray.from_arrays(pa.array(offsets), flat)
    return flat


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
