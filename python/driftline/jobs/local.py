"""The local engine: a reader thread, a scoring thread per model instance and a writer, overlapping I/O and compute."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import polars as pl

from driftline.backends import load_backend
from driftline.drift.target import drift_target
from driftline.drift.window import LiveWindow
from driftline.errors import BadRequest
from driftline.jobs.capture import BulkCapture, JobCapture
from driftline.jobs.checkpoint import JobDir
from driftline.jobs.prepare import prepare
from driftline.jobs.sources import iter_chunks, to_arrays

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy.typing as npt

    from driftline.backends.base import Backend, TensorSpec
    from driftline.capture.rows import CaptureBatch
    from driftline.drift.policy import DriftPolicy
    from driftline.drift.report import DriftReport
    from driftline.jobs.capture import CaptureTarget
    from driftline.jobs.roots import Roots
    from driftline.jobs.sources import ColumnPlan
    from driftline.jobs.spec import JobSpec

    Tensors = tuple[dict[str, npt.NDArray[Any]], dict[str, npt.NDArray[Any]]]  # a chunk's inputs, outputs
    # A scored chunk: file, chunk, output, rejected count, rejected rows, capture batches.
    Scored = tuple[int, int, pl.DataFrame, int, pl.DataFrame | None, list[CaptureBatch]]

__all__ = ["JobCancelled", "JobDrift", "JobSummary", "job_drift", "run_local", "score_frame"]

_DONE = None


class JobCancelled(Exception):
    """The job was cancelled; what was written stays durable and ``--resume`` finishes it."""


class JobDrift(msgspec.Struct, frozen=True):
    """Drift of the rows this run scored against the model's reference data."""

    verdict: str
    drifted_share: float
    drifted: list[str]
    rows: int


class JobSummary(msgspec.Struct, frozen=True):
    """What a finished job reports (also the manifest's body)."""

    model: str
    version: int
    rows: int
    rejected: int
    seconds: float
    rows_per_s: float
    output: str
    parts: list[str]
    drift: JobDrift | None = None
    capture: JobCapture | None = None


def _empty_output(spec: TensorSpec) -> npt.NDArray[Any]:
    from driftline.protocol.datatypes import to_numpy_dtype  # tiny, keeps imports local to the rare path

    return np.zeros((0, *(d if d > 0 else 1 for d in spec.shape[1:])), dtype=to_numpy_dtype(spec.datatype))


def score_frame(
    backend: Backend,
    frame: pl.DataFrame,
    plan: ColumnPlan,
    spec: JobSpec,
    observe: Callable[[dict[str, npt.NDArray[Any]]], None] | None = None,
    keep: Callable[[pl.DataFrame, npt.NDArray[np.intp] | None, Tensors], pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, int, pl.DataFrame | None]:
    """Score one chunk (both engines use this): the output frame, the rejected count, the rejected rows if kept.

    ``observe`` sees the model inputs of the rows that are scored (the drift summary uses it). ``keep`` sees the
    scored rows, their indexes in the chunk (None: all of it) and their inputs and outputs, and returns columns
    appended to the output (capture uses it).
    """
    arrays, mask = to_arrays(frame, plan)
    rejected, rejected_rows, positions = 0, None, None
    if mask is not None:
        if spec.on_null == "fail":
            raise BadRequest(f"{int(mask.sum())} row(s) with nulls in model columns (on_null = 'fail')")
        rejected = int(mask.sum())
        if spec.on_null == "file":
            rejected_rows = frame.filter(pl.Series(mask))
        positions = np.flatnonzero(~mask)
        frame = frame.filter(pl.Series(~mask))
        arrays = {k: v[positions] for k, v in arrays.items()}
    rows = len(frame)
    if observe is not None and rows:
        observe(arrays)
    if rows == 0:
        outputs = {t.name: _empty_output(t) for t in backend.outputs}
    else:
        pieces: list[dict[str, npt.NDArray[Any]]] = []
        for start in range(0, rows, spec.batch_size):
            pieces.append(backend.infer({k: v[start : start + spec.batch_size] for k, v in arrays.items()}))
        outputs = pieces[0] if len(pieces) == 1 else {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
    scored = pl.DataFrame([pl.Series(name, value) for name, value in outputs.items()])
    # Pass-through columns first; select([]) would give a frame of height 0, so only hstack when there are some.
    out = frame.select(plan.passthrough).hstack(scored) if plan.passthrough else scored
    if keep is not None:
        out = out.hstack(keep(frame, positions, (arrays, outputs)))
    return out, rejected, rejected_rows


def job_drift(report: DriftReport, rows: int) -> JobDrift:
    """The summary's drift section from a report on the rows a job scored (both engines use this)."""
    return JobDrift(
        verdict=report.verdict,
        drifted_share=round(report.drifted_share, 4),
        drifted=[f.name for f in report.features if f.verdict == "drift"],
        rows=rows,
    )


def _drift_summary(window: LiveWindow, policy: DriftPolicy) -> JobDrift | None:
    if window.n_rows == 0:
        return None
    return job_drift(window.report(policy, view="current"), window.n_rows)


def _keeper(
    bulk: BulkCapture, first: int, batches: list[CaptureBatch]
) -> Callable[[pl.DataFrame, npt.NDArray[np.intp] | None, Tensors], pl.DataFrame]:
    """score_frame's ``keep`` for a chunk whose first row is input row ``first``: its batches go to ``batches``."""
    arrived_us, began = time.time_ns() // 1000, time.perf_counter()

    def keep(rows: pl.DataFrame, at: npt.NDArray[np.intp] | None, tensors: Tensors) -> pl.DataFrame:
        columns, made = bulk.chunk(first, rows, at, tensors, (arrived_us, int((time.perf_counter() - began) * 1e6)))
        batches.extend(made)
        return columns

    return keep


def run_local(
    spec: JobSpec,
    *,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    roots: Roots | None = None,
    capture: CaptureTarget | None = None,
    job_id: str | None = None,
) -> JobSummary:
    """Run (or resume) a scoring job on this machine.

    Every problem with the inputs (missing files, missing or mistyped columns in any file, nulls when
    ``on_null = "fail"``) is reported before any row is scored.

    Args:
        spec: the job.
        resume: finish a job whose output directory already exists.
        progress: called from this thread with (rows done, rows in all) after each durable part.
        cancel: set it to stop at the next part; the job can be resumed later.
        roots: the server's job roots: every input file and the output directory is checked against them where
            it is opened (a symlink swapped in since the job was submitted cannot lead out of them).
        capture: where the scored rows are captured (needed when ``spec.capture``).
        job_id: the id captured rows carry (default: a new one).

    Raises:
        BadRequest: bad inputs, model reference or output directory; paths outside the roots.
        JobCancelled: ``cancel`` was set.
    """
    if spec.capture and capture is None:
        raise BadRequest("the job captures its rows (capture = true), but no capture directory was given")
    started = time.perf_counter()
    job_plan = prepare(spec, roots)
    files, source, version, plan = job_plan.files, job_plan.source, job_plan.version, job_plan.plan
    backends = [job_plan.backend]
    backends += [
        load_backend(source.backend, source.artifacts[version], source.config) for _ in range(spec.instances - 1)
    ]
    try:
        bulk = None
        if spec.capture and capture is not None:
            BulkCapture.check(spec, backends[0], files, roots)
            bulk = BulkCapture(spec, source, version, capture, job_id or uuid.uuid4().hex[:16])
    except BaseException:
        for backend in backends:
            backend.close()
        raise
    # The input row index of each file's first row: a captured chunk's id names its first row.
    offsets = np.cumsum([0, *(f.rows for f in files)]).tolist()
    target = drift_target(source, backends[0].inputs)
    window = LiveWindow(target.profile, model=spec.model, version=str(version)) if target is not None else None

    def observe(arrays: dict[str, npt.NDArray[Any]]) -> None:
        if window is not None and target is not None:
            window.update(arrays[target.input_name])

    # The output directory stays open (and checked) for the whole job: every part is written through it.
    with JobDir(spec.output, roots) as job:
        try:
            done = job.start(spec, files, resume)
        except BaseException:
            for backend in backends:  # nothing was started yet that would close them
                backend.close()
            if bulk is not None:
                bulk.close()
            raise
        total = sum(f.rows for f in files)
        finished = sum(r.rows + r.rejected for r in job.records())

        work: queue.Queue[tuple[int, int, pl.DataFrame] | None] = queue.Queue(maxsize=2 * len(backends))
        results: queue.Queue[Scored | BaseException | None] = queue.Queue(maxsize=2 * len(backends))
        stop = threading.Event()

        def put(q: queue.Queue[Any], item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                except queue.Full:
                    continue
                return True
            return False

        def take(q: queue.Queue[Any]) -> Any:
            # A stopped job ends its scorers here: the reader's end markers are not sent once `stop` is set.
            while not stop.is_set():
                try:
                    return q.get(timeout=0.1)
                except queue.Empty:
                    continue
            return _DONE

        def read() -> None:
            try:
                for index, file in enumerate(files):
                    skip = {chunk for f, chunk in done if f == index}
                    for chunk, frame in iter_chunks(file, spec.chunk_rows, skip, roots):
                        if not put(work, (index, chunk, frame)):
                            return
            except BaseException as exc:  # noqa: BLE001 - handed to the writer, which re-raises it
                put(results, exc)
            finally:
                for _ in backends:
                    put(work, _DONE)

        def score(backend: Backend) -> None:
            try:
                while (item := take(work)) is not _DONE:
                    file, chunk, frame = item
                    batches: list[CaptureBatch] = []
                    keep = None if bulk is None else _keeper(bulk, offsets[file] + chunk * spec.chunk_rows, batches)
                    put(results, (file, chunk, *score_frame(backend, frame, plan, spec, observe, keep), batches))
            except BaseException as exc:  # noqa: BLE001 - handed to the writer, which re-raises it
                put(results, exc)
            finally:
                put(results, _DONE)

        threads = [threading.Thread(target=read, name="driftline-job-reader", daemon=True)]
        threads += [
            threading.Thread(target=score, args=(b,), name=f"driftline-job-{i}", daemon=True)
            for i, b in enumerate(backends)
        ]
        for thread in threads:
            thread.start()
        remaining = len(backends)
        try:
            while remaining:
                item = results.get()
                if item is _DONE:
                    remaining -= 1
                    continue
                if isinstance(item, BaseException):
                    raise item
                file, chunk, frame, rejected, rejected_rows, batches = item
                job.write_part(file, chunk, frame, rejected, rejected_rows)
                if bulk is not None:  # after the part is durable: a resumed job captures a row at most once
                    bulk.submit(batches)
                finished += len(frame) + rejected
                if progress is not None:
                    progress(finished, total)
                if cancel is not None and cancel.is_set():
                    raise JobCancelled(f"job writing to {spec.output} was cancelled; --resume finishes it")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            for backend in backends:
                backend.close()
            captured = None if bulk is None else bulk.close()
        records = job.records()
        seconds = time.perf_counter() - started
        rows = sum(r.rows for r in records)
        summary = JobSummary(
            model=spec.model,
            version=version,
            rows=rows,
            rejected=sum(r.rejected for r in records),
            seconds=round(seconds, 3),
            rows_per_s=round(rows / seconds, 1) if seconds > 0 else 0.0,
            output=str(job.root),
            parts=[r.path for r in records],
            drift=_drift_summary(window, target.policy) if window is not None and target is not None else None,
            capture=captured,
        )
        job.write_manifest(msgspec.to_builtins(summary))
        return summary
