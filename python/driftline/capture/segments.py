"""Writing one segment file so it is visible whole or not at all (temp name in the same folder, fsync, rename), and
indexing it."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.parquet as pq

from driftline.errors import StoreUnavailable
from driftline.store.captures import temp_name

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.store.captures import CaptureIndex, Segment

__all__ = ["LINEAGE_KEY", "index_segment", "write_segment"]

# The Parquet key-value metadata entry that holds the lineage (JSON) of the version whose rows a segment holds.
LINEAGE_KEY = b"driftline.lineage"
_log = logging.getLogger("driftline.capture")


def write_segment(root: Path, rel: str, table: pa.Table, metadata: dict[bytes, bytes] | None = None) -> tuple[int, str]:
    """Write ``table`` as the Parquet file ``root/rel`` (replacing one there atomically), with ``metadata`` added to
    its key-value metadata (a rewritten segment keeps what its table read back).

    Returns:
        The file's size in bytes and its sha256.

    Raises:
        OSError: the folder or file cannot be written (read-only, full disk); no temp file is left behind.
    """
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = pa.BufferOutputStream()
    # Dictionary encoding pays off only for the repeated strings (model, sha256, arm, ids): tried on the float
    # columns of inputs and outputs, which hardly repeat, it was 70% of the write's time. zstd's level 1 writes
    # the same size as its default here, in three quarters of the time (benchmarks/RESULTS.md).
    strings = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    strings += [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    pq.write_table(table, sink, compression="zstd", compression_level=1, use_dictionary=strings)
    data = sink.getvalue().to_pybytes()
    final = root / rel
    directory = final.parent
    temp = directory / temp_name(final.stem)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with temp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # The rename makes the segment visible whole; until then only the temp name (never listed) exists.
        temp.replace(final)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    # Persist the rename itself, so a crash after it cannot bring the old name back.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(data), hashlib.sha256(data).hexdigest()


# Seconds between tries to index a written segment while the store is unreachable (7.5 s in all).
_INDEX_RETRY_S: Final = (0.5, 1.0, 2.0, 4.0)


def index_segment(index: CaptureIndex, segment: Segment) -> None:
    """Index a written segment; a shared store that is unreachable for now (a PostgreSQL restart) is retried, then
    left to the next start's reconciliation, which indexes finished files the index lacks: capture goes on (its
    queue drops and counts what arrives meanwhile) rather than stopping for good."""
    for delay in (*_INDEX_RETRY_S, None):
        try:
            index.add(segment)
        except StoreUnavailable as exc:
            if delay is None:
                _log.error("capture: %s is written but not indexed (%s); the next start indexes it", segment.path, exc)
                return
            _log.warning("capture: indexing %s failed (%s); again in %.1f s", segment.path, exc, delay)
            time.sleep(delay)
        else:
            return
