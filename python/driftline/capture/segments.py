"""Writing one segment file so it is visible whole or not at all: temp name in the same folder, fsync, rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from driftline.store.captures import temp_name

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LINEAGE_KEY", "write_segment"]

# The Parquet key-value metadata entry that holds the lineage (JSON) of the version whose rows a segment holds.
LINEAGE_KEY = b"driftline.lineage"


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
