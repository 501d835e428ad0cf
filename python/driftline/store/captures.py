"""The index of captured-row segments, and the on-disk layout it indexes.

A segment is one Parquet file under ``<root>/model=<m>/version=<v>/day=<YYYY-MM-DD>/<uuid>.parquet``. It is written
under a temp name in the same folder (``.<uuid>.<pid>.tmp``, never listed) and renamed into place whole, then
recorded here; readers go by this index alone. :meth:`CaptureIndex.reconcile` makes the index match the files
again after a crash between those steps.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from driftline.security.digests import file_sha256

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = [
    "SEGMENT_SUFFIX",
    "CaptureIndex",
    "Reconciled",
    "Segment",
    "describe_segment",
    "partition",
    "temp_name",
]

SEGMENT_SUFFIX: Final = ".parquet"
TEMP_SUFFIX: Final = ".tmp"
# A finished file that is no Parquet (damaged outside driftline) is renamed aside with this suffix, never read.
QUARANTINE_SUFFIX: Final = ".corrupt"
_PARTITION: Final = re.compile(r"\Amodel=([^/]+)/version=([0-9]+)/day=([0-9]{4}-[0-9]{2}-[0-9]{2})\Z")
# .<stem>.<pid>.<host>.tmp (the host part is absent in files of earlier versions): see reconcile.
_TEMP: Final = re.compile(r"\A\.[0-9a-f]{32}\.([0-9]+)(?:\.([A-Za-z0-9-]+))?\.tmp\Z")
_HOST: Final = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"
#: Replicas on other hosts share a capture directory: their pids mean nothing here, so their temp files are deleted
#: only once no writer could still be writing them (a segment is written in seconds).
FOREIGN_TEMP_S: Final = 3600.0
_COLUMNS: Final = "path, model, version, day, rows, bytes, first_ts, last_ts, sha256"
# A rewrite (after an erasure) keeps the path: every other column is replaced, as the row is new.
_UPDATE: Final = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[1:])


@dataclass(frozen=True, slots=True)
class Segment:
    """One finished segment: its path relative to the capture root, what it holds and its file's digest."""

    path: str
    model: str
    version: int
    day: str
    rows: int
    bytes: int
    first_ts: int  # µs since the epoch, UTC
    last_ts: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What :meth:`CaptureIndex.reconcile` changed."""

    added: int = 0
    removed: int = 0
    updated: int = 0
    temp_deleted: int = 0
    quarantined: int = 0


def partition(model: str, version: int, day: str) -> str:
    """The folder of one model version's segments of one UTC day, relative to the capture root."""
    return f"model={model}/version={version}/day={day}"


def temp_name(stem: str) -> str:
    """The name a segment is written under before its rename; it carries the writer's pid and host (see
    reconcile)."""
    return f".{stem}.{os.getpid()}.{_HOST}{TEMP_SUFFIX}"


def describe_segment(root: Path, rel: str) -> Segment:
    """Read a finished segment's footer and ts column into its index row.

    Raises:
        ValueError: the path is not in the layout.
        OSError, pyarrow.ArrowException: the file cannot be read as Parquet.
    """
    match = _PARTITION.match(str(PurePosixPath(rel).parent))
    if match is None or not rel.endswith(SEGMENT_SUFFIX):
        raise ValueError(f"{rel} is not a capture segment path")
    path = root / rel
    ts = pq.read_table(path, columns=["ts"]).column("ts").cast(pa.int64())
    bounds = pc.min_max(ts)
    return Segment(
        path=rel,
        model=match[1],
        version=int(match[2]),
        day=match[3],
        rows=len(ts),
        bytes=path.stat().st_size,
        first_ts=int(bounds["min"].as_py() or 0),
        last_ts=int(bounds["max"].as_py() or 0),
        sha256=file_sha256(path),
    )


class CaptureIndex:
    """The ``capture_segments`` table."""

    def __init__(self, db: Database) -> None:
        """Keep the database; the schema is migration 4."""
        self._db = db

    def add(self, segment: Segment) -> None:
        """Record a segment, or replace its row (a rewrite after erasure keeps the path)."""
        self._db.execute(
            f"INSERT INTO capture_segments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
            f" ON CONFLICT (path) DO UPDATE SET {_UPDATE}",
            (
                segment.path,
                segment.model,
                segment.version,
                segment.day,
                segment.rows,
                segment.bytes,
                segment.first_ts,
                segment.last_ts,
                segment.sha256,
            ),
        )

    def remove(self, path: str) -> None:
        """Forget one segment."""
        self._db.execute("DELETE FROM capture_segments WHERE path = ?", (path,))

    def segments(
        self, model: str | None = None, version: int | None = None, since: int | None = None, until: int | None = None
    ) -> list[Segment]:
        """Segments that may hold rows of ``model`` (every model when None) with ``since <= ts < until`` (µs UTC),
        oldest first."""
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        for clause, value in (
            ("model = ?", model),
            ("version = ?", version),
            ("last_ts >= ?", since),
            ("first_ts < ?", until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM capture_segments WHERE {' AND '.join(where)} ORDER BY first_ts, path",  # noqa: S608
            tuple(params),
        )
        return [Segment(**dict(row)) for row in rows]

    def by_age(self) -> list[Segment]:
        """Every segment, the one whose newest row is oldest first (the order retention deletes in)."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM capture_segments ORDER BY last_ts, path")  # noqa: S608
        return [Segment(**dict(row)) for row in rows]

    def total_bytes(self) -> int:
        """Bytes of every indexed segment."""
        return int(self._db.query("SELECT COALESCE(SUM(bytes), 0) FROM capture_segments")[0][0])

    def reconcile(self, root: Path) -> Reconciled:
        """Make the index match the finished files under ``root`` (at start, before this process's writer starts).

        Index rows whose file is gone are removed; finished files the index lacks (a crash between rename and
        insert) are added, and ones whose size changed (a crash between an erasure's rename and its update) are
        described again; temp files whose writer process is gone (a crash mid-write) are deleted, so a
        half-written segment is never read. A file that does not read as Parquet is renamed aside.
        """
        indexed = {segment.path: segment for segment in self.by_age()}
        seen: set[str] = set()
        added = updated = temp_deleted = quarantined = 0
        for path in sorted(root.glob("model=*/version=*/day=*/*")):
            rel = path.relative_to(root).as_posix()
            temp = _TEMP.match(path.name)
            if temp is not None:
                if _abandoned(path, int(temp[1]), temp[2]):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    temp_deleted += 1
                continue
            if not rel.endswith(SEGMENT_SUFFIX) or _PARTITION.match(str(PurePosixPath(rel).parent)) is None:
                continue
            seen.add(rel)
            known = indexed.get(rel)
            if known is not None and known.bytes == path.stat().st_size:
                continue
            try:
                segment = describe_segment(root, rel)
            except (OSError, pa.ArrowException, KeyError):
                path.rename(path.with_name(path.name + QUARANTINE_SUFFIX))
                seen.discard(rel)
                quarantined += 1
                continue
            self.add(segment)
            if known is None:
                added += 1
            else:
                updated += 1
        gone = indexed.keys() - seen
        for rel in gone:
            self.remove(rel)
        return Reconciled(added, len(gone), updated, temp_deleted, quarantined)


def _abandoned(path: Path, pid: int, host: str | None) -> bool:
    """Whether no writer is writing this temp file any more: its process is gone (this host's), or it is older than
    any write takes (another host's: a replica sharing the directory, whose pid is not ours to check)."""
    if host is None or host == _HOST:
        return not _alive(pid)
    try:
        return time.time() - path.stat().st_mtime > FOREIGN_TEMP_S
    except FileNotFoundError:  # renamed into place meanwhile
        return False


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (another worker may be writing its temp file right now).

    Our own pid counts as gone: reconcile runs before this process's writer starts, and a restarted container
    reuses the pid of the process that crashed.
    """
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
