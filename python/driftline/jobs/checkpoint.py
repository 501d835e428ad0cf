"""A job's output directory: the job record, atomically written parts, the checkpoint log and the manifest.

A part is written under a temporary name, fsynced, and renamed into place: a part file that exists is complete.
Its name says which input file and chunk it holds, so after a crash (kill -9 at any moment) a resumed job skips
exactly the chunks whose parts exist and rewrites the rest: every input row lands in the output exactly once.

The directory (and ``rejects/``) is opened once and every file is written through that descriptor, never following
a symlink planted at a file's name: with job roots, a directory swapped for a symlink after the check cannot move
the writes (see ``roots.py``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import msgspec

from driftline.errors import BadRequest
from driftline.jobs.roots import pinned_dir
from driftline.jobs.spec import JobSpec  # noqa: TC001 - msgspec needs it at run time

if TYPE_CHECKING:
    import polars as pl

    from driftline.jobs.roots import Roots
    from driftline.jobs.sources import InputFile

__all__ = ["JobDir", "PartRecord"]

JOB_FILE = "_job.json"
CHECKPOINT_FILE = "_checkpoint.jsonl"
MANIFEST_FILE = "_manifest.json"


class PartRecord(msgspec.Struct, frozen=True):
    """One durable output part: which input chunk it holds and how many rows went where."""

    file: int
    chunk: int
    rows: int
    rejected: int
    path: str


class _JobRecord(msgspec.Struct, frozen=True):
    spec: JobSpec
    files: list[dict[str, Any]]


# A name that is a symlink (planted in the output directory) fails to open instead of being followed.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _row_count(path: Path) -> int:
    import polars as pl  # only on the recovery path

    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def part_name(file: int, chunk: int) -> str:
    """The part file name of one input chunk."""
    return f"part-{file:05d}-{chunk:06d}.parquet"


class JobDir:
    """The output directory of one job."""

    def __init__(self, root: str | Path, roots: Roots | None = None) -> None:
        """Point at an output directory (created by :meth:`start`); with ``roots``, it must lie inside them."""
        self.root = Path(root)
        self._roots = roots
        # Where the I/O goes once start() opened the directories: paths naming the opened directories themselves.
        self._dir = self.root
        self.rejects = self.root / "rejects"
        self._fds: list[int] = []

    def _pin(self, path: Path) -> Path:
        fd, through = pinned_dir(path, self._roots)
        self._fds.append(fd)
        return through

    def close(self) -> None:
        """Close the directory descriptors start() opened."""
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, spec: JobSpec, files: list[InputFile], resume: bool) -> set[tuple[int, int]]:
        """Create or reopen the directory; returns the (file, chunk) pairs already durably written.

        Raises:
            BadRequest: a new job over an existing one, a resume whose spec or inputs changed, or (with roots) an
                output directory outside them.
        """
        record = _JobRecord(
            spec,
            [{"path": str(f.path), "rows": f.rows, "size": f.path.stat().st_size} for f in files],
        )
        if self._roots is not None:
            self._roots.nearest_existing_inside(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._dir = self._pin(self.root)
        job_file = self._dir / JOB_FILE
        if job_file.exists():
            if not resume:
                raise BadRequest(
                    f"{self.root} already holds a job: pass --resume to finish it, or choose a new --output"
                )
            previous = msgspec.json.decode(self._read(job_file), type=_JobRecord)
            if previous != record:
                raise BadRequest(f"{self.root}: the job's model, options or input files changed since it started")
        elif any(self._dir.iterdir()):
            raise BadRequest(f"output directory {self.root} is not empty and holds no job")
        (self._dir / "rejects").mkdir(exist_ok=True)
        self.rejects = self._pin(self._dir / "rejects")
        for stale in [*self._dir.glob("*.tmp"), *self.rejects.glob("*.tmp")]:
            stale.unlink()
        if not job_file.exists():
            self._write_atomic(job_file, msgspec.json.encode(record))
        done = set()
        for path in self._parts(self._dir):
            _, file, chunk = path.stem.split("-")
            done.add((int(file), int(chunk)))
        return done

    @staticmethod
    def _parts(directory: Path) -> list[Path]:
        # A symlink named like a part is not one of ours: never read through it.
        return sorted(p for p in directory.glob("part-*.parquet") if not p.is_symlink())

    @staticmethod
    def _read(path: Path) -> bytes:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def write_part(
        self, file: int, chunk: int, frame: pl.DataFrame, rejected: int, rejected_rows: pl.DataFrame | None
    ) -> PartRecord:
        """Write one chunk's output (and its rejected rows, when kept) durably, then log it in the checkpoint."""
        name = part_name(file, chunk)
        if rejected_rows is not None and len(rejected_rows):
            self._write_frame(self.rejects / name, rejected_rows)
        self._write_frame(self._dir / name, frame)
        record = PartRecord(file, chunk, len(frame), rejected, name)
        fd = os.open(self._dir / CHECKPOINT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
        with os.fdopen(fd, "ab") as log:
            log.write(msgspec.json.encode(record) + b"\n")
            log.flush()
            os.fsync(log.fileno())
        return record

    def records(self) -> list[PartRecord]:
        """One record per part file on disk; the part files are the truth, the checkpoint log a cache of counts.

        A crash between a part's rename and its log line leaves a part without a line: its counts are read back
        from the files. A torn last line is ignored.
        """
        logged: dict[str, PartRecord] = {}
        log = self._dir / CHECKPOINT_FILE
        if log.exists() and not log.is_symlink():
            for line in self._read(log).splitlines():
                with contextlib.suppress(msgspec.DecodeError):
                    entry = msgspec.json.decode(line, type=PartRecord)
                    logged[entry.path] = entry
        records = []
        for path in self._parts(self._dir):
            record = logged.get(path.name)
            if record is None:
                _, file, chunk = path.stem.split("-")
                reject = self.rejects / path.name
                rejected = _row_count(reject) if reject.exists() and not reject.is_symlink() else 0
                record = PartRecord(int(file), int(chunk), _row_count(path), rejected, path.name)
            records.append(record)
        return records

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write the manifest that marks the job complete."""
        self._write_atomic(self._dir / MANIFEST_FILE, msgspec.json.format(msgspec.json.encode(manifest)))

    @staticmethod
    def _create(tmp: Path) -> int:
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)

    def _write_frame(self, path: Path, frame: pl.DataFrame) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with os.fdopen(self._create(tmp), "wb") as fh:
            frame.write_parquet(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)  # rename replaces a symlink at `path`, never follows it
        _fsync_dir(path.parent)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with os.fdopen(self._create(tmp), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        _fsync_dir(path.parent)
