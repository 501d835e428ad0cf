"""The capture writer: a bounded queue the request path drops rows into, and one thread that writes segments.

The request path only appends to a deque under a lock: it never converts, waits or raises. The bound counts rows
from submit until they are written (queued and buffered alike), so memory stays bounded by ``queue_rows`` however
slow the disk is; past it a batch is dropped and counted. A write error stops capture for good (the reason is
kept for status and metrics) and every later row is dropped and counted: serving goes on without it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from driftline.capture.rows import day_of, signature, to_table_many
from driftline.capture.segments import write_segment
from driftline.repository.names import MODEL_NAME
from driftline.store.captures import SEGMENT_SUFFIX, Segment, partition

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.capture.rows import CaptureBatch, Signature
    from driftline.store.captures import CaptureIndex

__all__ = ["CaptureFigures", "CaptureWriter"]

_log = logging.getLogger("driftline.capture")
# The writer looks at its queue at least this often, so a segment's age is checked without a timer per batch.
_POLL_S = 0.25


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
    """Rows of one (model, version, day) waiting for their segment; one column signature per buffer. The batches
    are converted to Arrow together when the segment is written (one conversion per batch would cap the writer at
    a few thousand small requests a second)."""

    signature: Signature
    batches: list[CaptureBatch] = field(default_factory=list)
    rows: int = 0
    since: float = 0.0  # monotonic time of the first row


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
        self._cond = threading.Condition()
        self._queue: deque[CaptureBatch] = deque()
        self._pending = 0
        self._captured = self._dropped = self._segments = self._bytes = 0
        self._failed: str | None = None
        self._closing = False
        self._flush_asked = self._flush_done = 0
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

    def submit(self, batch: CaptureBatch) -> bool:
        """Queue a request's rows without waiting; False when they were dropped (and counted). Never raises."""
        rows = _rows(batch)
        with self._cond:
            if not rows or self._failed is not None or self._closing or self._pending + rows > self._queue_rows:
                self._dropped += rows
                return False
            self._queue.append(batch)
            self._pending += rows
            if self._pending >= self._segment_rows:
                self._cond.notify()
        return True

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
        buffers: dict[tuple[str, int, str], _Buffer] = {}
        while True:
            with self._cond:
                if not (self._queue or self._closing or self._flush_asked > self._flush_done):
                    self._cond.wait(_POLL_S)
                batches = list(self._queue)
                self._queue.clear()
                closing, flush = self._closing, self._flush_asked
            try:
                for batch in batches:
                    self._buffer(buffers, batch)
                everything = closing or flush > self._flush_done or self._pending >= self._queue_rows // 2
                now = time.monotonic()
                for key in [
                    k
                    for k, b in buffers.items()
                    if everything or b.rows >= self._segment_rows or now - b.since >= self._segment_seconds
                ]:
                    self._write(key, buffers.pop(key))
            except (OSError, sqlite3.Error, pa.ArrowException) as exc:
                self._fail(exc, buffers)
                return
            except Exception as exc:  # noqa: BLE001 - a writer thread that dies without a word would look alive
                _log.exception("capture: the writer thread failed")
                self._fail(exc, buffers)
                return
            with self._cond:
                self._flush_done = flush
                self._cond.notify_all()
                if closing and not self._queue:
                    return

    def _buffer(self, buffers: dict[tuple[str, int, str], _Buffer], batch: CaptureBatch) -> None:
        try:
            _check_partition(batch)
            columns = signature(batch)
        except (ValueError, TypeError, AttributeError) as exc:
            _log.warning("capture: a batch of %s was dropped: %s", getattr(batch, "model", "?"), exc)
            self._count(dropped=_rows(batch))
            return
        key = (batch.model, batch.version, day_of(batch.ts_us))
        held = buffers.get(key)
        if held is not None and held.signature != columns:
            self._write(key, buffers.pop(key))  # a segment has one schema: the columns kept changed
            held = None
        if held is None:
            held = buffers[key] = _Buffer(columns, since=time.monotonic())
        held.batches.append(batch)
        held.rows += batch.rows

    def _write(self, key: tuple[str, int, str], buffer: _Buffer) -> None:
        converted = self._table(buffer.batches)
        if converted is None:
            return
        table, kept = converted
        model, version, day = key
        rel = f"{partition(model, version, day)}/{uuid.uuid4().hex}{SEGMENT_SUFFIX}"
        size, sha256 = write_segment(self._root, rel, table)
        self._index.add(
            Segment(
                path=rel,
                model=model,
                version=version,
                day=day,
                rows=table.num_rows,
                bytes=size,
                first_ts=min(b.ts_us for b in kept),
                last_ts=max(b.ts_us for b in kept),
                sha256=sha256,
            )
        )
        with self._cond:
            self._captured += table.num_rows
            self._segments += 1
            self._bytes += size
            self._pending -= table.num_rows

    def _table(self, batches: list[CaptureBatch]) -> tuple[pa.Table, list[CaptureBatch]] | None:
        """The batches as one table; when that fails, without those that fail alone (dropped and counted)."""
        try:
            return to_table_many(batches), batches
        except (ValueError, TypeError, pa.ArrowException):
            kept: list[CaptureBatch] = []
            for batch in batches:
                try:
                    to_table_many([batch])
                except (ValueError, TypeError, pa.ArrowException) as exc:
                    _log.warning("capture: a batch of %s was dropped: %s", batch.model, exc)
                    self._count(dropped=batch.rows)
                else:
                    kept.append(batch)
            return (to_table_many(kept), kept) if kept else None

    def _count(self, *, dropped: int) -> None:
        with self._cond:
            self._dropped += dropped
            self._pending -= dropped

    def _fail(self, exc: BaseException, buffers: dict[tuple[str, int, str], _Buffer]) -> None:
        reason = f"capture stopped: cannot write below {self._root}: {_describe(exc)}"
        _log.error("%s", reason)
        with self._cond:
            self._failed = reason
            lost = self._pending  # everything buffered and still queued
            self._dropped += lost
            self._pending = 0
            self._queue.clear()
            self._cond.notify_all()
        buffers.clear()


def _check_partition(batch: CaptureBatch) -> None:
    """The model name and version become folder names: only names the repository allows, never a path."""
    if not isinstance(batch.model, str) or MODEL_NAME.match(batch.model) is None or batch.version < 0:
        raise ValueError(f"not a model name and version: {batch.model!r} {batch.version!r}")


def _rows(batch: object) -> int:
    """A batch's row count as submit counted it (0 for anything that is not a batch)."""
    rows = getattr(batch, "rows", None)
    return rows if isinstance(rows, int) and rows > 0 else 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
