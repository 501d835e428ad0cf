"""Bulk jobs capture too (``driftline score --capture``): scored chunks go through the capture writer the server
uses, so a server on the same capture directory and store lists them and joins their labels.

A scored chunk is one :class:`CaptureBatch` with arm ``"bulk"``; its request id is the job's id and the input row
index (over the job's files, in order) of its first captured row, its rows numbered from 0. A batch has one
entity, so with ``--entity-column`` a chunk is one batch per run of equal entities. The output gets the key each
row was captured under (``capture_id``, ``capture_row``: null for a row the sample rate left out), the key
``driftline feedback upload --id-column capture_id --row-column capture_row`` takes.

A batch is submitted only once its part of the output is durable: a job that crashes and resumes captures each
row at most once. A bulk job has no latency to protect, so when the writer's queue has no room the job waits for
it (a flush, bounded); rows are dropped, counted and explained in the summary only when that wait runs out or
capture failed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np
import polars as pl

from driftline.capture.rows import CaptureBatch, keep_tensors
from driftline.capture.service import plan_of
from driftline.capture.writer import CaptureWriter
from driftline.errors import BadRequest
from driftline.jobs.roots import opened
from driftline.jobs.sources import scan
from driftline.repository.lineage import lineage_of, read_run_record
from driftline.security.digests import file_sha256

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt

    from driftline.backends.base import Backend
    from driftline.capture.service import CapturePlan
    from driftline.config import CaptureSettings
    from driftline.jobs.roots import Roots
    from driftline.jobs.sources import InputFile
    from driftline.jobs.spec import JobSpec
    from driftline.repository.layout import ModelSource
    from driftline.store.captures import CaptureIndex

__all__ = ["CAPTURE_ID", "CAPTURE_ROW", "BulkCapture", "CaptureTarget", "JobCapture"]

CAPTURE_ID: Final = "capture_id"
CAPTURE_ROW: Final = "capture_row"
ARM: Final = "bulk"
# How long a chunk waits for room in the writer's queue before its rows are dropped (a stuck disk, say).
_ROOM_WAIT_S: Final = 60.0
_CLOSE_WAIT_S: Final = 120.0


@dataclass(frozen=True, slots=True)
class CaptureTarget:
    """Where a job's captured rows go: the server-wide ``[capture]`` (directory, queue bound, segment size and the
    defaults a model's ``[capture]`` overrides) and the store's segment index (``settings.database``)."""

    settings: CaptureSettings
    index: CaptureIndex


class JobCapture(msgspec.Struct, frozen=True):
    """The summary's capture section."""

    directory: str
    sampled: int  # scored rows the sample rate picked
    captured: int  # rows written to segments
    dropped: int  # sampled rows not written (why: ``reason``)
    segments: int
    reason: str | None = None


class BulkCapture:
    """One job's capture: its own writer (its own queue bound), the model version's capture plan and the job's id."""

    def __init__(
        self,
        spec: JobSpec,
        source: ModelSource,
        version: int,
        target: CaptureTarget,
        job_id: str,
    ) -> None:
        """Work out what the version captures and start a writer.

        Raises:
            BadRequest: the model's config.toml turns capture off, or a chunk would not fit the writer's queue.
        """
        own = source.config.capture
        if own.enabled is False:
            raise BadRequest(
                f"--capture: model {spec.model!r} turns capture off in its config.toml ([capture] enabled = false)"
            )
        default = target.settings
        # --capture is the switch: the server default's `enabled` (off unless set) does not apply to a job.
        self._plan: CapturePlan | None = plan_of(msgspec.structs.replace(own.over(default), enabled=True))
        if spec.chunk_rows > default.queue_rows:
            raise BadRequest(
                f"--chunk-rows {spec.chunk_rows} is more than the capture queue holds ([capture] queue_rows = "
                f"{default.queue_rows}): choose --chunk-rows <= {default.queue_rows}"
            )
        self._queue_rows = default.queue_rows
        artifact = source.artifacts[version]
        sha256 = file_sha256(artifact)
        self._model = (spec.model, version, sha256)
        # The version's lineage, stamped into its segments as the server stamps its own (a bad lineage.json is
        # refused here as the server refuses to load the version).
        lineage = lineage_of(read_run_record(artifact.parent), source.path, version, artifact, sha256)
        self._job_id = job_id
        self._entity = spec.entity_column
        self._root = Path(default.directory)
        self._sampled = 0
        self._waited_out = False
        self._writer = CaptureWriter(
            self._root,
            target.index,
            queue_rows=default.queue_rows,
            segment_rows=default.segment_rows,
            segment_seconds=default.segment_seconds,
        )
        self._writer.describe(spec.model, version, msgspec.json.encode(lineage))

    @staticmethod
    def check(spec: JobSpec, backend: Backend, files: Sequence[InputFile], roots: Roots | None) -> None:
        """Refuse, before anything is scored, output columns that clash and an entity column some file lacks.

        Raises:
            BadRequest: naming the column (and the files without the entity column).
        """
        taken = set(spec.passthrough) | {t.name for t in backend.outputs}
        clash = sorted(taken & {CAPTURE_ID, CAPTURE_ROW})
        if clash:
            raise BadRequest(f"--capture adds the output columns {CAPTURE_ID!r} and {CAPTURE_ROW!r}: {clash} taken")
        if spec.entity_column is None:
            return
        missing = []
        for file in files:
            with opened(file.path, roots) as source:
                if spec.entity_column not in scan(source, file.format).collect_schema():
                    missing.append(str(file.path))
        if missing:
            raise BadRequest(f"--entity-column {spec.entity_column!r}: no such column in {', '.join(missing)}")

    def chunk(
        self,
        first_row: int,
        scored: pl.DataFrame,
        positions: npt.NDArray[np.intp] | None,
        tensors: tuple[Mapping[str, npt.NDArray[Any]], Mapping[str, npt.NDArray[Any]]],
        times_us: tuple[int, int],
    ) -> tuple[pl.DataFrame, list[CaptureBatch]]:
        """The capture key columns of a scored chunk and its batches (submitted later, by :meth:`submit`).

        Args:
            first_row: the input row index of the chunk's first row.
            scored: the chunk's scored rows (rejected ones removed).
            positions: each scored row's index within the chunk (None: every row was scored).
            tensors: the scored rows' model inputs and outputs.
            times_us: when the chunk was scored (µs since the epoch) and how long it took.
        """
        n = len(scored)
        picked = self._sample(first_row, n)
        index = np.arange(n) if picked is None else np.flatnonzero(picked)
        inputs, outputs = tensors
        if self._plan is not None:
            inputs = keep_tensors(inputs, self._plan.inputs, self._plan.exclude)
            outputs = keep_tensors(outputs, self._plan.outputs)
        if picked is not None:  # gathered once, so each run below is a view
            inputs = {k: v[index] for k, v in inputs.items()}
            outputs = {k: v[index] for k, v in outputs.items()}
        entities = None if self._entity is None else scored[self._entity].cast(pl.String).gather(index)
        starts, ends = _runs(entities, len(index))
        # Per run, everything a batch needs as plain Python values, worked out in a few array calls: with an entity
        # column a run is often one row, so this loop runs once per row.
        first_rows = (first_row + (index if positions is None else positions[index])[starts]).tolist()
        keys = [None] * len(starts) if entities is None else entities.gather(starts).to_list()
        ins, outs = list(inputs.items()), list(outputs.items())
        model, version, sha256 = self._model
        batches = [
            CaptureBatch(
                model=model,
                version=version,
                sha256=sha256,
                request_id=f"{self._job_id}-{at}",
                arm=ARM,
                ts_us=times_us[0],
                latency_us=times_us[1],
                rows=b - a,
                inputs={k: v[a:b] for k, v in ins},
                outputs={k: v[a:b] for k, v in outs},
                entity=key,
            )
            for a, b, at, key in zip(starts.tolist(), ends.tolist(), first_rows, keys, strict=True)
        ]
        lengths = ends - starts
        run_of = np.full(n, -1, dtype=np.int64)
        row_of = np.full(n, -1, dtype=np.int32)
        run_of[index] = np.repeat(np.arange(len(starts)), lengths)
        row_of[index] = np.arange(len(index)) - np.repeat(starts, lengths)
        left_out = pl.Series(run_of < 0)  # rows the sample rate did not pick: no key
        ids = pl.Series(CAPTURE_ID, [b.request_id for b in batches] or [None], pl.String)
        columns = pl.DataFrame(
            [
                ids.gather(np.maximum(run_of, 0)).set(left_out, None),
                pl.Series(CAPTURE_ROW, row_of, pl.Int32).set(left_out, None),
            ]
        )
        return columns, batches

    def submit(self, batches: Sequence[CaptureBatch]) -> None:
        """Hand a durable chunk's batches to the writer, waiting (bounded) for room in its queue for all of them."""
        rows = sum(batch.rows for batch in batches)
        self._sampled += rows
        # Once a wait ran out (or capture failed) the job stops waiting: every later chunk that finds the queue
        # full is dropped at once, so a stuck disk cannot stall the job for a wait per chunk.
        if (
            rows
            and not self._waited_out
            and self._writer.failed is None
            and self._writer.figures().queue_rows + rows > self._queue_rows
            and not self._writer.flush(_ROOM_WAIT_S)
        ):
            self._waited_out = True
        for batch in batches:
            self._writer.submit(batch)

    def close(self) -> JobCapture:
        """Write what is queued, stop the writer and sum up."""
        finished = self._writer.close(_CLOSE_WAIT_S)
        figures = self._writer.figures()
        dropped = self._sampled - figures.captured
        reason = figures.failed
        if reason is None and not finished:
            reason = f"the capture writer did not finish within {_CLOSE_WAIT_S:.0f}s"
        if reason is None and dropped and self._waited_out:
            reason = f"the capture queue ([capture] queue_rows = {self._queue_rows}) was full for {_ROOM_WAIT_S:.0f}s"
        return JobCapture(
            directory=str(self._root),
            sampled=self._sampled,
            captured=figures.captured,
            dropped=dropped,
            segments=figures.segments,
            reason=reason,
        )

    def _sample(self, first_row: int, n: int) -> npt.NDArray[np.bool_] | None:
        """Rows the sample rate picks (None: all), the same for the same job id and chunk in every run."""
        rate = 0.0 if self._plan is None else self._plan.rate
        if rate >= 1.0:
            return None
        seed = hashlib.blake2b(f"{self._job_id}-{first_row}".encode(), digest_size=8).digest()
        return np.random.default_rng(int.from_bytes(seed, "big")).random(n) < rate


def _runs(entities: pl.Series | None, n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Starts and ends of each batch's rows: all rows in one, or (with entities) each run of equal ones."""
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    if entities is None:
        return np.array([0], dtype=np.intp), np.array([n], dtype=np.intp)
    changed = entities.ne_missing(entities.shift(1)).to_numpy()
    changed[0] = True
    starts = np.flatnonzero(changed)
    return starts, np.append(starts[1:], n)
