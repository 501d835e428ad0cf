"""Runs HTTP-submitted jobs one at a time on a background thread; unfinished jobs resume after a restart."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.errors import BadRequest, DriftlineError
from driftline.jobs.local import JobCancelled, run_local
from driftline.jobs.sources import expand_inputs

if TYPE_CHECKING:
    from driftline.jobs.spec import JobSpec
    from driftline.store.jobs import JobStore

__all__ = ["JobRunner", "confine"]

_log = logging.getLogger("driftline.jobs")
_PROGRESS_EVERY_S = 0.5


def confine(spec: JobSpec, roots: list[Path]) -> None:
    """Refuse a job that would read or write outside the configured roots (checked after globs expand).

    Raises:
        BadRequest: naming each path outside every root.
    """
    resolved = [r.resolve() for r in roots]

    def inside(path: Path) -> bool:
        p = path.resolve()
        return any(p.is_relative_to(r) for r in resolved)

    outside = [p for p in (*spec.inputs, spec.output) if not inside(Path(p))]
    if not outside:
        outside = [str(f.path) for f in expand_inputs(spec.inputs) if not inside(f.path)]
    if outside:
        raise BadRequest(f"paths outside the allowed job roots {[str(r) for r in resolved]}: {outside}")


class JobRunner:
    """A FIFO of jobs and the one thread that runs them (so bulk scoring never starves the serving path)."""

    def __init__(self, store: JobStore) -> None:
        """Use the store for state and progress."""
        self._store = store
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._cancel: dict[str, threading.Event] = {}
        self._thread = threading.Thread(target=self._work, name="driftline-jobs", daemon=True)
        self._stopping = False

    def start(self) -> None:
        """Start the worker and requeue what a previous run left unfinished."""
        for record in self._store.unfinished():
            _log.info("job %s was %s when the server stopped: resuming it", record.id, record.state)
            self._store.update(record.id, state="queued")
            self._enqueue(record.id)
        self._thread.start()

    def submit(self, spec: JobSpec) -> str:
        """Record and queue a job; returns its id."""
        job_id = self._store.create(spec)
        self._enqueue(job_id)
        return job_id

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop; False if it is unknown or already finished."""
        record = self._store.get(job_id)
        if record is None or record.state not in ("queued", "running"):
            return False
        if record.state == "queued":
            self._store.update(job_id, state="cancelled")
        self._cancel.setdefault(job_id, threading.Event()).set()
        return True

    def stop(self, timeout: float = 30) -> None:
        """Stop after the current part of the running job; the job stays 'running' and resumes on restart."""
        self._stopping = True
        for event in self._cancel.values():
            event.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _enqueue(self, job_id: str) -> None:
        self._cancel.setdefault(job_id, threading.Event())
        self._queue.put(job_id)

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            record = self._store.get(job_id)
            cancel = self._cancel[job_id]
            if record is None or record.state != "queued":
                continue
            self._run(job_id, record.spec, cancel)

    def _run(self, job_id: str, spec: JobSpec, cancel: threading.Event) -> None:
        self._store.update(job_id, state="running")
        started = time.perf_counter()
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if now - last >= _PROGRESS_EVERY_S or done >= total:
                last = now
                rate = done / (now - started) if now > started else 0.0
                self._store.update(job_id, rows_done=done, rows_total=total, rows_per_s=round(rate, 1))

        try:
            resume = (Path(spec.output) / "_job.json").exists()
            summary = run_local(spec, resume=resume, progress=progress, cancel=cancel)
        except JobCancelled:
            # A server shutdown also sets the event: then the job stays 'running' and the next start resumes it.
            if not self._stopping:
                self._store.update(job_id, state="cancelled")
        except DriftlineError as exc:
            self._store.update(job_id, state="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a job failure must never kill the runner thread
            _log.exception("job %s failed", job_id)
            self._store.update(job_id, state="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._store.update(
                job_id,
                state="succeeded",
                rows_done=summary.rows,
                rows_total=summary.rows,
                rows_per_s=summary.rows_per_s,
            )
