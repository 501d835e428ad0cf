"""The capture writer: a bounded queue the request path drops rows into, and one thread that writes segments.

The request path appends a tuple of references to a list under a plain lock: it never copies, waits or raises.
Every few hundred requests the submitting thread converts them column-wide to Arrow (a few calls per chunk, not per
request); the writer thread converts the rest each poll, buffers the tables by partition and writes the segments
(Parquet and the disk release the GIL). What is held is Arrow tables, not one object per request. The bound counts rows
from submit until they are written (queued and buffered alike), so memory stays bounded by ``queue_rows`` however
slow the disk is; past it a batch is dropped and counted. A write error stops capture for good (the reason is
kept for status and metrics) and every later row is dropped and counted: serving goes on without it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING

import pyarrow as pa

from driftline.capture.rows import day_of, entry_of, table_of
from driftline.capture.segments import LINEAGE_KEY, index_segment, write_segment
from driftline.repository.names import MODEL_NAME
from driftline.store.captures import SEGMENT_SUFFIX, Segment, partition
from driftline.store.db import STORE_ERRORS

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.capture.rows import CaptureBatch, Entry, Signature
    from driftline.store.captures import CaptureIndex

__all__ = ["CaptureFigures", "CaptureWriter"]

_log = logging.getLogger("driftline.capture")
# The writer looks at its queue at least this often, so a segment's age is checked without a timer per batch.
_POLL_S = 0.25
_DAY_US = 86_400 * 1_000_000
# A buffer's (model, version, UTC day number): one segment partition.
_Key = tuple[str, int, int]
# Entries converted as one table: its partition, column signature, the table, its first and last arrival (µs).
_Converted = tuple[_Key, "Signature", pa.Table, int, int]
# A submitting thread converts this many entries at a time (about a millisecond on the event loop).
_CHUNK = 256
# What converting a batch may raise for a batch that does not fit the capture shape (it is dropped and counted).
_CONVERT_ERRORS = (ValueError, TypeError, AttributeError, KeyError, pa.ArrowException)


@dataclass(frozen=True, slots=True)
class CaptureFigures:
    """A snapshot of the writer's counters (for metrics and status)."""

    captured: int  # rows written to segments
    dropped: int  # rows dropped: queue full, capture stopped or closed, or a batch that did not convert
    segments: int
    bytes: int
    queue_rows: int  # rows submitted and not yet written
    failed: str | None


@dataclass(slots=True)
class _Buffer:
    """Rows of one (model, version, day) waiting for their segment, converted to Arrow a drain at a time (a few
    hundred requests per table: no per-request objects are kept, and each conversion is a few column-wide calls);
    one column signature per buffer."""

    signature: Signature
    schema: pa.Schema
    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    since: float = 0.0  # monotonic time of the first row
    first_ts: int = 0
    last_ts: int = 0


class CaptureWriter:
    """Writes captured rows as Parquet segments under ``root`` and records each in ``index``."""

    def __init__(
        self,
        root: Path,
        index: CaptureIndex,
        *,
        queue_rows: int = 100_000,
        segment_rows: int = 50_000,
        segment_seconds: float = 60.0,
    ) -> None:
        """Start the writer thread.

        Args:
            root: the capture directory (created when first written to).
            index: where each finished segment is recorded.
            queue_rows: rows submitted and not yet written, at most; past it a batch is dropped.
            segment_rows: a segment is written once a (model, version, day) has this many rows...
            segment_seconds: ...or its oldest row has waited this long.

        Raises:
            ValueError: naming the argument out of range.
        """
        if queue_rows < 1:
            raise ValueError(f"queue_rows must be >= 1, got {queue_rows}")
        if not 1 <= segment_rows <= queue_rows:
            raise ValueError(f"segment_rows must be within 1..queue_rows ({queue_rows}), got {segment_rows}")
        if not segment_seconds > 0:
            raise ValueError(f"segment_seconds must be > 0, got {segment_seconds}")
        self._root = root
        self._index = index
        self._queue_rows = queue_rows
        self._segment_rows = segment_rows
        self._segment_seconds = segment_seconds
        # A plain lock (entered in C) for the request path; the condition on it wakes the writer and flushes.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._open: list[Entry] = []  # entries not yet converted (fewer than _CHUNK)
        self._tables: list[_Converted] = []  # converted by the submitting threads, for the writer to buffer
        self._converted = 0  # rows in _tables
        self._pending = 0
        self._captured = self._dropped = self._segments = self._bytes = 0
        self._failed: str | None = None
        self._closing = False
        self._stopped = False  # the writer thread returned after a close
        self._flush_asked = self._flush_done = 0
        # (model, version) pairs whose names were checked (a set's add is atomic), day numbers as folder names.
        self._checked: set[tuple[str, int]] = set()
        self._days: dict[int, str] = {}
        # (model, version) -> its lineage as JSON, stamped into each of its segments (set from the event loop).
        self._lineage: dict[tuple[str, int], bytes] = {}
        self._thread = threading.Thread(target=self._run, name="driftline-capture", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> str | None:
        """Why capture stopped (a write error), or None while it works."""
        return self._failed

    def figures(self) -> CaptureFigures:
        """The counters, read together."""
        with self._cond:
            return CaptureFigures(
                self._captured, self._dropped, self._segments, self._bytes, self._pending, self._failed
            )

    def describe(self, model: str, version: int, lineage: bytes) -> None:
        """Stamp ``lineage`` (JSON) into the segments of (model, version) written from now on."""
        self._lineage[(model, version)] = lineage

    def submit(self, batch: CaptureBatch) -> bool:
        """Queue a batch's rows without waiting; False when they were dropped (and counted). Never raises."""
        try:
            entry = entry_of(batch)
        except AttributeError:  # not a batch: its rows, if it says, are dropped
            with self._lock:
                self._dropped += _rows(getattr(batch, "rows", None))
            return False
        return self.put(entry)

    def put(self, entry: Entry) -> bool:
        """:meth:`submit` for the request path: the batch's fields as a tuple, kept by reference (the caller must
        not change its mappings afterwards), with a plain lock and no allocation beyond the queue's slot."""
        rows = entry[7]
        if type(rows) is not int or rows < 1:  # not a batch's row count (bool, 0): nothing to queue or count
            return False
        with self._lock:
            if self._failed is not None or self._closing or self._pending + rows > self._queue_rows:
                self._dropped += rows
                return False
            self._open.append(entry)
            self._pending += rows
            if len(self._open) < _CHUNK:
                return True
            chunk, self._open = self._open, []
        self._convert_chunk(chunk)
        return True

    def _convert_chunk(self, chunk: list[Entry]) -> None:
        """Convert a chunk of entries on the submitting thread and hand the tables to the writer. Never raises.

        On the event loop this is a millisecond every few hundred requests; on the writer thread the same work
        stalled the loop for longer, the GIL held by a thread the OS had preempted (2 cores shared with the load).
        """
        try:
            tables = self._convert_all(chunk)
        except Exception:  # noqa: BLE001 - never into the request: the rows are dropped and counted
            _log.exception("capture: a chunk of %d requests did not convert", len(chunk))
            with self._lock:
                if self._failed is None:  # else they were counted when capture stopped
                    lost = sum(e[7] for e in chunk)
                    self._dropped += lost
                    self._pending -= lost
            return
        with self._lock:
            if self._failed is not None:
                return
            if self._stopped:  # closed while this chunk converted: nobody will write it
                lost = sum(t[2].num_rows for t in tables)
                self._dropped += lost
                self._pending -= lost
                return
            self._tables.extend(tables)
            before = self._converted
            self._converted += sum(t[2].num_rows for t in tables)
            if self._converted >= self._segment_rows > before:  # a segment's worth: wake the writer once
                self._cond.notify()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write every row submitted so far; True when done within ``timeout_s``."""
        with self._cond:
            self._flush_asked += 1
            asked = self._flush_asked
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self._flush_done >= asked or self._failed is not None or not self._thread.is_alive(),
                timeout=timeout_s,
            )
            return self._flush_done >= asked

    def close(self, timeout_s: float = 30.0) -> bool:
        """Write what is queued, then stop the thread; True when it stopped within ``timeout_s``."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        buffers: dict[_Key, _Buffer] = {}
        while True:
            with self._cond:
                # Sit out the poll unless asked to hurry: a drain then holds a few hundred requests, converted in one
                # go (draining as rows come would convert them a handful at a time, for the same GIL per row).
                if not (self._closing or self._flush_asked > self._flush_done or self._converted >= self._segment_rows):
                    self._cond.wait(_POLL_S)
                entries, self._open = self._open, []
                tables, self._tables, self._converted = self._tables, [], 0
                closing, flush = self._closing, self._flush_asked
            try:
                for converted in [*tables, *self._convert_all(entries)]:
                    self._add(buffers, converted)
                everything = closing or flush > self._flush_done or self._pending >= self._queue_rows // 2
                now = time.monotonic()
                for key in [
                    k
                    for k, b in buffers.items()
                    if everything or b.rows >= self._segment_rows or now - b.since >= self._segment_seconds
                ]:
                    self._write(key, buffers.pop(key))
            except (OSError, *STORE_ERRORS, pa.ArrowException) as exc:
                self._fail(exc, buffers)
                return
            except Exception as exc:  # noqa: BLE001 - a writer thread that dies without a word would look alive
                _log.exception("capture: the writer thread failed")
                self._fail(exc, buffers)
                return
            with self._cond:
                self._flush_done = flush
                self._cond.notify_all()
                if closing and not (self._open or self._tables):
                    self._stopped = True
                    return

    def _convert_all(self, entries: list[Entry]) -> list[_Converted]:
        """The entries as tables, by partition and column signature (those that do not fit are dropped)."""
        return [(key, *c) for key, group in self._partitions(entries).items() for c in self._convert(group)]

    def _partitions(self, entries: list[Entry]) -> dict[_Key, list[Entry]]:
        """The entries by (model, version, day number), in order; those that cannot name a folder are dropped."""
        groups: dict[_Key, list[Entry]] = {}
        for entry in entries:
            try:
                key = (entry[0], entry[1], entry[5] // _DAY_US)
                group = groups.get(key)
                if group is None:
                    if key[:2] not in self._checked:
                        _check_partition(entry)
                        self._checked.add(key[:2])
                    group = groups[key] = []
            except (ValueError, TypeError, AttributeError) as exc:  # TypeError: not names, a number and a time
                self._drop(entry, exc)
                continue
            group.append(entry)
        return groups

    def _convert(self, group: list[Entry]) -> list[tuple[Signature, pa.Table, int, int]]:
        """The entries as tables: one for them all, else one per signature of those that convert alone (the
        others are dropped and counted)."""
        try:
            columns, table = table_of(group)
        except _CONVERT_ERRORS:
            pass
        else:
            return [(columns, table, *_span(group))]
        apart: dict[tuple[Signature, pa.Schema], tuple[list[pa.Table], list[Entry]]] = {}
        for entry in group:
            try:
                columns, table = table_of([entry])
            except _CONVERT_ERRORS as exc:
                self._drop(entry, exc)
                continue
            tables, kept = apart.setdefault((columns, table.schema), ([], []))
            tables.append(table)
            kept.append(entry)
        return [(columns, pa.concat_tables(tables), *_span(kept)) for (columns, _), (tables, kept) in apart.items()]

    def _add(self, buffers: dict[_Key, _Buffer], converted: _Converted) -> None:
        key, columns, table, first, last = converted
        held = buffers.get(key)
        if held is not None and (held.signature != columns or not held.schema.equals(table.schema)):
            self._write(key, buffers.pop(key))  # a segment has one schema: the columns kept changed
            held = None
        if held is None:
            held = buffers[key] = _Buffer(columns, table.schema, since=time.monotonic(), first_ts=first, last_ts=last)
        held.tables.append(table)
        held.rows += table.num_rows
        held.first_ts, held.last_ts = min(held.first_ts, first), max(held.last_ts, last)

    def _write(self, key: _Key, buffer: _Buffer) -> None:
        table = buffer.tables[0] if len(buffer.tables) == 1 else pa.concat_tables(buffer.tables)
        model, version, number = key
        day = self._days.get(number)
        if day is None:
            day = self._days[number] = day_of(number * _DAY_US)
        rel = f"{partition(model, version, day)}/{uuid.uuid4().hex}{SEGMENT_SUFFIX}"
        lineage = self._lineage.get((model, version))
        size, sha256 = write_segment(self._root, rel, table, None if lineage is None else {LINEAGE_KEY: lineage})
        index_segment(
            self._index,
            Segment(
                path=rel,
                model=model,
                version=version,
                day=day,
                rows=table.num_rows,
                bytes=size,
                first_ts=buffer.first_ts,
                last_ts=buffer.last_ts,
                sha256=sha256,
            ),
        )
        with self._cond:
            self._captured += table.num_rows
            self._segments += 1
            self._bytes += size
            self._pending -= table.num_rows

    def _drop(self, entry: Entry, exc: BaseException) -> None:
        _log.warning("capture: a batch of %s was dropped: %s", entry[0], exc)
        with self._cond:
            if self._failed is None:  # else it was counted when capture stopped
                self._dropped += entry[7]
                self._pending -= entry[7]

    def _fail(self, exc: BaseException, buffers: dict[_Key, _Buffer]) -> None:
        reason = f"capture stopped: cannot write below {self._root}: {_describe(exc)}"
        _log.error("%s", reason)
        with self._cond:
            self._failed = reason
            lost = self._pending  # everything buffered and still queued
            self._dropped += lost
            self._pending = 0
            self._open.clear()
            self._tables.clear()
            self._converted = 0
            self._cond.notify_all()
        buffers.clear()


def _check_partition(entry: Entry) -> None:
    """The model name and version become folder names: only names the repository allows, never a path."""
    model, version = entry[0], entry[1]
    if not isinstance(model, str) or MODEL_NAME.match(model) is None or version < 0:
        raise ValueError(f"not a model name and version: {model!r} {version!r}")


def _span(entries: list[Entry]) -> tuple[int, int]:
    """The first and last arrival among the entries."""
    times = list(map(itemgetter(5), entries))
    return min(times), max(times)


def _rows(rows: object) -> int:
    """A row count as submit counts it (0 for anything that is not a positive integer)."""
    return rows if isinstance(rows, int) and rows > 0 else 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
