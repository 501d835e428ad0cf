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
    from collections.abc import Collection, Iterator, Mapping, Sequence

    from numpy.typing import NDArray

__all__ = [
    "ARMS",
    "FIXED",
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "TS",
    "CaptureBatch",
    "Signature",
    "day_of",
    "keep_tensors",
    "signature",
    "to_table",
    "to_table_many",
]

# How the request reached its version (serving/routing.py's arms, plus an explicit pin and the default alias), or
# "bulk": a row scored by a bulk job (driftline score --capture).
ARMS: Final = frozenset({"alias", "canary", "split", "shadow", "pinned", "default", "bulk"})
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


# What a segment's columns depend on: each kept tensor's column name, dtype and per-row shape, in order.
Signature = tuple[tuple[str, str, tuple[int, ...]], ...]


def signature(batch: CaptureBatch) -> Signature:
    """The batch's column signature: batches with equal ones convert together into one table.

    Raises:
        ValueError: an unknown arm, or a tensor whose first dimension is not the batch's row count.
    """
    if batch.arm not in ARMS:
        raise ValueError(f"arm must be one of {sorted(ARMS)}, got {batch.arm!r}")
    return tuple((column, _kind(arr), arr.shape[1:]) for column, arr in _tensors(batch, batch.rows))


def to_table(batch: CaptureBatch) -> pa.Table:
    """The batch as rows of the capture shape (errors as :func:`signature`)."""
    return to_table_many([batch])


def to_table_many(batches: Sequence[CaptureBatch]) -> pa.Table:
    """Batches of one :func:`signature` as one table, converted column by column (a few Arrow calls for the lot,
    not a few per request: the writer keeps up with many small requests).

    Raises:
        ValueError: as :func:`signature`, or batches whose signatures differ.
    """
    first = signature(batches[0])
    counts = np.array([b.rows for b in batches], dtype=np.int64)
    n = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)

    each = pa.array(np.repeat(np.arange(len(batches)), counts))

    def repeated(values: list[Any], kind: pa.DataType) -> pa.Array:
        return pa.array(values, kind).take(each)  # one value per batch, then one per row

    columns: list[pa.Array] = [
        repeated([b.request_id for b in batches], pa.string()),
        pa.array((np.arange(n, dtype=np.int64) - starts).astype(np.int32)),
        repeated([b.model for b in batches], pa.string()),
        pa.array(np.repeat(np.array([b.version for b in batches], dtype=np.int32), counts)),
        repeated([b.sha256 for b in batches], pa.string()),
        pa.array(np.repeat(np.array([b.ts_us for b in batches], dtype=np.int64), counts)).cast(TS),
        repeated([b.arm for b in batches], pa.string()),
        pa.array(np.repeat(np.array([b.latency_us for b in batches], dtype=np.int64), counts)),
        repeated([b.entity for b in batches], pa.string()),
    ]
    fields = list(FIXED)
    parts: list[list[NDArray[Any]]] = [[] for _ in first]
    for batch in batches:
        tensors = list(_tensors(batch, batch.rows))
        if tuple((c, _kind(a), a.shape[1:]) for c, a in tensors) != first:
            raise ValueError(f"batch {batch.request_id!r} does not have the columns of the others")
        for part, (_, arr) in zip(parts, tensors, strict=True):
            part.append(arr)
    for (name, _, _), part in zip(first, parts, strict=True):
        column = _column(part[0] if len(part) == 1 else np.concatenate(part))
        fields.append(pa.field(name, column.type))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _tensors(batch: CaptureBatch, n: int) -> Iterator[tuple[str, NDArray[Any]]]:
    """Each kept tensor under its column name, with the batch's rows as its first dimension."""
    for prefix, tensors in ((INPUT_PREFIX, batch.inputs), (OUTPUT_PREFIX, batch.outputs)):
        for name, value in tensors.items():
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != n:
                if n != 1:
                    raise ValueError(f"{prefix}{name}: first dimension {arr.shape[:1]} is not the batch's {n} rows")
                arr = arr[np.newaxis]
            yield f"{prefix}{name}", arr


def _kind(arr: NDArray[Any]) -> str:
    """A tensor's type as its column sees it: every text dtype is one (they all become strings)."""
    return "text" if arr.dtype.kind in "SUO" else arr.dtype.str


def _column(arr: NDArray[Any]) -> pa.Array:
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
