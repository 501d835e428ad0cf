"""A job's output directory: the job record, atomically written parts, the checkpoint log and the manifest.

A part is written under a temporary name, fsynced, and renamed into place: a part file that exists is complete.
Its name says which input file and chunk it holds, so after a crash (kill -9 at any moment) a resumed job skips
exactly the chunks whose parts exist and rewrites the rest: every input row lands in the output exactly once.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.errors import BadRequest
from driftline.jobs.spec import JobSpec  # noqa: TC001 - msgspec needs it at run time

if TYPE_CHECKING:
    import polars as pl

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

    def __init__(self, root: str | Path) -> None:
        """Point at an output directory (created by :meth:`start`)."""
        self.root = Path(root)
        self.rejects = self.root / "rejects"

    def start(self, spec: JobSpec, files: list[InputFile], resume: bool) -> set[tuple[int, int]]:
        """Create or reopen the directory; returns the (file, chunk) pairs already durably written.

        Raises:
            BadRequest: a new job over an existing one, or a resume whose spec or inputs changed.
        """
        record = _JobRecord(
            spec,
            [{"path": str(f.path), "rows": f.rows, "size": f.path.stat().st_size} for f in files],
        )
        job_file = self.root / JOB_FILE
        if job_file.exists():
            if not resume:
                raise BadRequest(
                    f"{self.root} already holds a job: pass --resume to finish it, or choose a new --output"
                )
            previous = msgspec.json.decode(job_file.read_bytes(), type=_JobRecord)
            if previous != record:
                raise BadRequest(f"{self.root}: the job's model, options or input files changed since it started")
        elif self.root.exists() and any(self.root.iterdir()):
            raise BadRequest(f"output directory {self.root} is not empty and holds no job")
        self.root.mkdir(parents=True, exist_ok=True)
        self.rejects.mkdir(exist_ok=True)
        for stale in [*self.root.glob("*.tmp"), *self.rejects.glob("*.tmp")]:
            stale.unlink()
        if not job_file.exists():
            self._write_atomic(job_file, msgspec.json.encode(record))
        done = set()
        for path in self.root.glob("part-*.parquet"):
            _, file, chunk = path.stem.split("-")
            done.add((int(file), int(chunk)))
        return done

    def write_part(
        self, file: int, chunk: int, frame: pl.DataFrame, rejected: int, rejected_rows: pl.DataFrame | None
    ) -> PartRecord:
        """Write one chunk's output (and its rejected rows, when kept) durably, then log it in the checkpoint."""
        name = part_name(file, chunk)
        if rejected_rows is not None and len(rejected_rows):
            self._write_frame(self.rejects / name, rejected_rows)
        self._write_frame(self.root / name, frame)
        record = PartRecord(file, chunk, len(frame), rejected, name)
        with (self.root / CHECKPOINT_FILE).open("ab") as log:
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
        log = self.root / CHECKPOINT_FILE
        if log.exists():
            for line in log.read_bytes().splitlines():
                with contextlib.suppress(msgspec.DecodeError):
                    entry = msgspec.json.decode(line, type=PartRecord)
                    logged[entry.path] = entry
        records = []
        for path in sorted(self.root.glob("part-*.parquet")):
            record = logged.get(path.name)
            if record is None:
                _, file, chunk = path.stem.split("-")
                reject = self.rejects / path.name
                record = PartRecord(
                    int(file), int(chunk), _row_count(path), _row_count(reject) if reject.exists() else 0, path.name
                )
            records.append(record)
        return records

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write the manifest that marks the job complete."""
        self._write_atomic(self.root / MANIFEST_FILE, msgspec.json.format(msgspec.json.encode(manifest)))

    def _write_frame(self, path: Path, frame: pl.DataFrame) -> None:
        tmp = path.with_name(path.name + ".tmp")
        frame.write_parquet(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)
        _fsync_dir(path.parent)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        _fsync_dir(path.parent)
