"""Retention (whole oldest segments beyond an age or a size) and erasure (every row of one entity).

Both change files the index lists, so the caller runs them on one thread, after flushing the writer (rows of the
entity still queued would otherwise be written after the erasure). Each step leaves a state a reader and
reconcile accept: a file is deleted before its index row (a reader skips a listed file that is gone), and a
rewritten segment replaces the old one by rename under the same path.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import pyarrow.compute as pc
import pyarrow.parquet as pq

from driftline.capture.segments import write_segment
from driftline.store.captures import Segment

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.store.captures import CaptureIndex

__all__ = ["enforce_retention", "erase_entity"]


def enforce_retention(
    root: Path,
    index: CaptureIndex,
    *,
    max_age_s: float | None,
    max_bytes: int | None,
    model: str | None = None,
    now_us: int | None = None,
) -> int:
    """Delete whole segments, oldest newest-row first, while one is older than ``max_age_s`` or the segments
    together hold more than ``max_bytes`` (None: no such limit); ``model`` limits both to its segments.

    Returns:
        The number of segments deleted.
    """
    now = time.time_ns() // 1000 if now_us is None else now_us
    cutoff = None if max_age_s is None else now - int(max_age_s * 1_000_000)
    segments = [s for s in index.by_age() if model is None or s.model == model]
    total = sum(s.bytes for s in segments)
    deleted = 0
    for segment in segments:
        too_old = cutoff is not None and segment.last_ts < cutoff
        too_big = max_bytes is not None and total > max_bytes
        if not (too_old or too_big):
            break  # ordered by age: no later segment is older, and the size is within the limit
        with contextlib.suppress(FileNotFoundError):
            (root / segment.path).unlink()
        index.remove(segment.path)
        total -= segment.bytes
        deleted += 1
    return deleted


def erase_entity(root: Path, index: CaptureIndex, entity: str, requests: set[tuple[str, str]] | None = None) -> int:
    """Remove every captured row whose ``entity`` is this one, rewriting each segment that holds one.

    ``requests``, when given, receives the (model, request id) of every row removed: labels keyed by request id
    carry no entity, so erasing the entity's feedback needs them.

    Returns:
        The number of rows removed.

    Raises:
        OSError: a segment could not be rewritten; the segments done so far stay done (run it again).
    """
    removed = 0
    for segment in index.segments():
        path = root / segment.path
        try:
            hits = int(pc.sum(pc.equal(pq.read_table(path, columns=["entity"])["entity"], entity)).as_py() or 0)
        except FileNotFoundError:
            continue
        if not hits:
            continue
        table = pq.read_table(path)
        mine = pc.fill_null(pc.equal(table["entity"], entity), False)
        if requests is not None:
            gone = table.filter(mine).select(["model", "request_id"]).to_pylist()
            requests.update((r["model"], r["request_id"]) for r in gone)
        kept = table.filter(pc.invert(mine))
        if kept.num_rows == 0:
            path.unlink()
            index.remove(segment.path)
        else:
            size, sha256 = write_segment(root, segment.path, kept)
            bounds = pc.min_max(kept["ts"].cast("int64"))
            index.add(
                Segment(
                    path=segment.path,
                    model=segment.model,
                    version=segment.version,
                    day=segment.day,
                    rows=kept.num_rows,
                    bytes=size,
                    first_ts=int(bounds["min"].as_py()),
                    last_ts=int(bounds["max"].as_py()),
                    sha256=sha256,
                )
            )
        removed += hits
    return removed
