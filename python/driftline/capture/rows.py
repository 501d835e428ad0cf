"""The captured-row shape: what one inference hands to capture, and the Arrow table it becomes.

Every segment has the fixed columns of :data:`FIXED` first (the feedback join relies on ``request_id``, ``row``,
``model``, ``version`` and ``entity``), then one column per kept input ``in.<name>`` and output ``out.<name>``
holding that row's slice of the tensor: a number for a scalar, a list for a vector (lists of lists beyond), a
string for BYTES.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
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
    """One request's rows as a caller hands them over; converted to Arrow with many others (:func:`table_of`).

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
    return tuple((column, _kind(arr.dtype), arr.shape[1:]) for column, arr in _tensors(batch, batch.rows))


def to_table(batch: CaptureBatch) -> pa.Table:
    """The batch as rows of the capture shape (errors as :func:`signature`)."""
    return to_table_many([batch])


def to_table_many(batches: Sequence[CaptureBatch]) -> pa.Table:
    """Batches of one :func:`signature` as one table (errors as :func:`table_of`)."""
    return table_of([entry_of(b) for b in batches])[1]


# A batch as the writer's queue holds it: CaptureBatch's fields in their order, as a plain tuple. The request path
# builds one per request, and a tuple costs a tenth of a frozen dataclass; the writer transposes many with zip().
Entry = tuple[
    str, int, str, str, str, int, int, int, "Mapping[str, NDArray[Any]]", "Mapping[str, NDArray[Any]]", "str | None"
]


def entry_of(batch: CaptureBatch) -> Entry:
    """The batch as the writer queues it."""
    return (
        batch.model,
        batch.version,
        batch.sha256,
        batch.request_id,
        batch.arm,
        batch.ts_us,
        batch.latency_us,
        batch.rows,
        batch.inputs,
        batch.outputs,
        batch.entity,
    )


def batch_of(entry: Entry) -> CaptureBatch:
    """The queued entry as the batch it was."""
    return CaptureBatch(*entry)


def table_of(entries: Sequence[Entry]) -> tuple[Signature, pa.Table]:
    """Entries of one :func:`signature` as one table, converted column by column (a few Arrow calls for the lot,
    not a few per request: the writer keeps up with many small requests), with their signature.

    The common case (every tensor an array with the entry's rows first, the same names, dtypes and per-row shapes
    throughout) is checked column-wide without looking at entries one by one; anything else takes the exact path,
    which normalises each entry and names the first that does not fit.

    Raises:
        ValueError: as :func:`signature`, or entries whose signatures differ (naming the request).
    """
    try:
        return _uniform(entries)
    except _NotUniform:
        return _exact(entries)


class _NotUniform(Exception):
    """The entries need the exact path."""


def _uniform(entries: Sequence[Entry]) -> tuple[Signature, pa.Table]:
    models, versions, shas, ids, arms, ts, latencies, rows, ins, outs, entities = zip(*entries, strict=True)
    counts = list(rows)
    if not ARMS.issuperset(arms):
        raise _NotUniform
    columns = _fixed(models, versions, shas, ids, arms, ts, latencies, counts, entities)
    fields = list(FIXED)
    sig: list[tuple[str, str, tuple[int, ...]]] = []
    # Every check is map() over a column with a C getter: no Python frame per entry.
    try:
        for prefix, tensors in ((INPUT_PREFIX, ins), (OUTPUT_PREFIX, outs)):
            if len(set(map(len, tensors))) != 1:
                raise _NotUniform
            for name in tensors[0]:  # as many tensors each, and each of these names (or a KeyError): the same ones
                arrays = list(map(itemgetter(name), tensors))
                if set(map(type, arrays)) != {np.ndarray}:
                    raise _NotUniform  # numpy scalars, lists: the exact path turns them into arrays
                shapes = list(map(attrgetter("shape"), arrays))
                per_row = set(map(itemgetter(slice(1, None)), shapes))
                # A tensor without the entry's rows first (a whole tensor as one row, or one that does not fit)
                # is normalised or named there; so are tensors of more than one per-row shape.
                if len(per_row) != 1 or min(map(len, shapes)) == 0 or list(map(itemgetter(0), shapes)) != counts:
                    raise _NotUniform
                dtypes = set(map(attrgetter("dtype"), arrays))
                kinds = set(map(_kind, dtypes))
                if len(kinds) != 1:
                    raise _NotUniform
                column = _column(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
                sig.append((f"{prefix}{name}", kinds.pop(), per_row.pop()))
                fields.append(pa.field(f"{prefix}{name}", column.type))
                columns.append(column)
    except (AttributeError, TypeError, KeyError, IndexError) as exc:  # not mappings of arrays: named on the exact path
        raise _NotUniform from exc
    return tuple(sig), pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _exact(entries: Sequence[Entry]) -> tuple[Signature, pa.Table]:
    batches = [batch_of(e) for e in entries]
    first = signature(batches[0])
    parts: list[list[NDArray[Any]]] = [[] for _ in first]
    for batch in batches:
        tensors = list(_tensors(batch, batch.rows))
        if tuple((c, _kind(a.dtype), a.shape[1:]) for c, a in tensors) != first:
            raise ValueError(f"batch {batch.request_id!r} does not have the columns of the others")
        for part, (_, arr) in zip(parts, tensors, strict=True):
            part.append(arr)
    models, versions, shas, ids, arms, ts, latencies, counts, _, _, entities = zip(*entries, strict=True)
    columns = _fixed(models, versions, shas, ids, arms, ts, latencies, counts, entities)
    fields = list(FIXED)
    for (name, _, _), part in zip(first, parts, strict=True):
        column = _column(part[0] if len(part) == 1 else np.concatenate(part))
        fields.append(pa.field(name, column.type))
        columns.append(column)
    return first, pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _fixed(
    models: Sequence[str],
    versions: Sequence[int],
    shas: Sequence[str],
    ids: Sequence[str],
    arms: Sequence[str],
    ts: Sequence[int],
    latencies: Sequence[int],
    counts: Sequence[int],
    entities: Sequence[str | None],
) -> list[pa.Array]:
    """The fixed columns of :data:`FIXED`, one value per batch repeated over its rows."""
    n = len(ids)
    per_row = np.array(counts, dtype=np.int64)
    total = int(per_row.sum())
    each = None if total == n else pa.array(np.repeat(np.arange(n), per_row))

    def repeated(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
        array = pa.array(values, kind)
        return array if each is None else array.take(each)  # one value per batch, then one per row

    def numbers(values: Sequence[int], dtype: type[np.generic]) -> pa.Array:
        array = np.array(values, dtype=dtype)
        return pa.array(array if each is None else np.repeat(array, per_row))

    rows = np.zeros(total, dtype=np.int32)
    if each is not None:
        rows = (np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(per_row) - per_row, per_row)).astype(np.int32)
    return [
        repeated(ids, pa.string()),
        pa.array(rows),
        repeated(models, pa.string()),
        numbers(versions, np.int32),
        repeated(shas, pa.string()),
        numbers(ts, np.int64).cast(TS),
        repeated(arms, pa.string()),
        numbers(latencies, np.int64),
        repeated(entities, pa.string()),
    ]


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


def _kind(dtype: np.dtype[Any]) -> str:
    """A tensor's type as its column sees it: every text dtype is one (they all become strings)."""
    return "text" if dtype.kind in "SUO" else dtype.str


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
