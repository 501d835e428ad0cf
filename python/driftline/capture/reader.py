"""Reading captured rows back: by the index alone (no directory scan), one segment in memory at a time."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal

import msgspec
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from driftline.capture.rows import FIXED, TS
from driftline.capture.segments import LINEAGE_KEY

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Sequence

    from driftline.store.captures import CaptureIndex, Segment

__all__ = ["CaptureReader", "ExportFormat", "Matched", "to_us"]

ExportFormat = Literal["parquet", "jsonl"]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def to_us(moment: datetime, name: str) -> int:
    """A timezone-aware datetime as µs since the epoch.

    Raises:
        ValueError: naming the argument, when ``moment`` has no timezone (it would be read in local time).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must carry a timezone (e.g. 2026-01-31T00:00:00Z), got {moment.isoformat()}")
    return (moment - _EPOCH) // _US


@dataclass(frozen=True, slots=True)
class Matched:
    """Of the keys :meth:`CaptureReader.matched` was asked about, those some captured row has."""

    requests: set[tuple[str, int | None]]
    entities: set[str]


class CaptureReader:
    """The rows of one model's segments (optionally one version, ``since <= ts < until``), oldest segment first."""

    def __init__(self, root: Path, index: CaptureIndex) -> None:
        """Read segments under ``root`` as ``index`` lists them."""
        self._root = root
        self._index = index

    def segments(
        self, model: str, version: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[Segment]:
        """The indexed segments that may hold matching rows."""
        return self._index.segments(
            model,
            version,
            None if since is None else to_us(since, "since"),
            None if until is None else to_us(until, "until"),
        )

    def tables(
        self, model: str, version: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[pa.Table]:
        """One table per segment, only its matching rows (a segment deleted meanwhile by retention is skipped)."""
        return self._read(self.segments(model, version, since, until), since, until)

    def columns(self, segments: list[Segment], names: list[str]) -> Iterator[pa.Table]:
        """Only the columns ``names`` of each segment (fixed columns: every segment has them), whole segments."""
        for segment in segments:
            try:
                yield pq.read_table(self._root / segment.path, columns=names)
            except FileNotFoundError:
                continue

    def matched(
        self,
        model: str,
        requests: Collection[tuple[str, int | None]],
        entities: Collection[str],
        limit: int,
        *,
        skip_arm: str | None = None,
    ) -> Matched | None:
        """Which (request id, row) keys (row None: any row of that request) and entities the model's written
        segments hold, reading only their key columns and stopping once every key is found; rows of ``skip_arm``
        do not count. None (not looked at) when the segments hold more than ``limit`` rows: a caller that asks
        per request must not read the whole capture history each time.
        """
        segments = self.segments(model)
        if sum(s.rows for s in segments) > limit:
            return None
        wanted = set(requests)
        any_row = {rid for rid, row in wanted if row is None}
        ids = pa.array(sorted({rid for rid, _ in wanted}), pa.string())
        names = pa.array(sorted(set(entities)), pa.string())
        found = Matched(set(), set())
        columns = ["request_id", "row", "entity", *([] if skip_arm is None else ["arm"])]
        for table in self.columns(segments, columns):
            if len(found.requests) == len(wanted) and len(found.entities) == len(names):
                break  # every key is found: the rest cannot change the answer
            rows = table if skip_arm is None else table.filter(pc.not_equal(table["arm"], skip_arm))
            hits = rows.filter(pc.is_in(rows["request_id"], value_set=ids))
            for key in zip(hits["request_id"].to_pylist(), hits["row"].to_pylist(), strict=True):
                if key in wanted:
                    found.requests.add(key)
                if key[0] in any_row:
                    found.requests.add((key[0], None))
            named = rows.filter(pc.is_in(rows["entity"], value_set=names))["entity"]
            found.entities.update(pc.unique(named).to_pylist())
        return found

    def _read(self, segments: list[Segment], since: datetime | None, until: datetime | None) -> Iterator[pa.Table]:
        for segment in segments:
            try:
                table = pq.read_table(self._root / segment.path)
            except FileNotFoundError:
                continue
            keep = None
            if since is not None:
                keep = pc.greater_equal(table["ts"], pa.scalar(since, TS))
            if until is not None:
                before = pc.less(table["ts"], pa.scalar(until, TS))
                keep = before if keep is None else pc.and_(keep, before)
            yield table if keep is None else table.filter(keep)

    def frame(
        self, model: str, version: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pl.DataFrame:
        """Every matching row as one DataFrame (columns a segment lacks are null in its rows)."""
        frames = [_frame(table) for table in self.tables(model, version, since, until)]
        if not frames:
            return _frame(FIXED.empty_table())
        return pl.concat(frames, how="diagonal_relaxed")

    def export(
        self,
        sink: str | Path | BinaryIO,
        fmt: ExportFormat,
        model: str,
        version: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        through: Callable[[pa.Table], pa.Table] | None = None,
        added: Sequence[pa.Field] = (),
    ) -> int:
        """Stream the matching rows into ``sink`` as one Parquet file or as JSON lines (ts as ISO 8601 with its
        offset), one segment in memory at a time; returns the rows written. A Parquet file's key-value metadata
        ``driftline.lineage`` holds a JSON object: each exported version's lineage, as its segments carry it.

        ``through`` turns each segment's rows into the rows written (the labeled export joins them to their
        labels), which may have the ``added`` columns beyond the segments' own.

        Raises:
            ValueError: naming ``format`` or ``since`` / ``until`` (a datetime without a timezone).
        """
        if fmt not in ("parquet", "jsonl"):
            raise ValueError(f"format must be 'parquet' or 'jsonl', got {fmt!r}")
        segments = self.segments(model, version, since, until)
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(Path(sink).open("wb")) if isinstance(sink, str | os.PathLike) else sink
            tables = self._read(segments, since, until)
            if through is not None:
                tables = map(through, tables)
            if fmt == "parquet":
                return self._parquet(out, segments, tables, added)
            return self._jsonl(out, tables)

    def _parquet(
        self, out: BinaryIO, segments: list[Segment], tables: Iterator[pa.Table], added: Sequence[pa.Field]
    ) -> int:
        # One schema for the file: every segment's columns unified (from their footers), so segments written with
        # different kept columns still make one file.
        schemas = [FIXED]
        lineage: dict[str, Any] = {}  # version -> its lineage, from the segments' own metadata
        for segment in segments:
            with contextlib.suppress(FileNotFoundError):
                schemas.append(pq.read_schema(self._root / segment.path))
                stamped = (schemas[-1].metadata or {}).get(LINEAGE_KEY)
                if stamped is not None:
                    lineage[str(segment.version)] = msgspec.json.decode(stamped)
        schema = pa.unify_schemas([*schemas, pa.schema(added)], promote_options="permissive")
        # The file holds rows of several versions: its metadata names each one's lineage.
        schema = schema.with_metadata({LINEAGE_KEY: msgspec.json.encode(lineage)} if lineage else {})
        written = 0
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            for table in tables:
                writer.write_table(_conform(table, schema))
                written += table.num_rows
        return written

    def _jsonl(self, out: BinaryIO, tables: Iterator[pa.Table]) -> int:
        written = 0
        for table in tables:
            if table.num_rows:
                _frame(table).write_ndjson(out)
                written += table.num_rows
        return written


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a Table always becomes a DataFrame (a Series only from an Array)
    return frame


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order: missing ones null, others cast to the unified type."""
    columns = [
        table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
