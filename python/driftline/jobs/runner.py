"""Runs HTTP-submitted jobs one at a time on a background thread; unfinished jobs resume after a restart.

With several processes on one store each job runs in one of them: a process claims a job before running it and
renews its lease while it runs (:mod:`driftline.jobs.store`); every ``lease_s`` each process adopts the orphans
(queued jobs, and running ones whose owner's lease ran out), so a job outlives the replica that started it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.errors import DriftlineError
from driftline.jobs.local import JobCancelled, run_local
from driftline.jobs.roots import check_job_paths
from driftline.jobs.sources import expand_inputs

if TYPE_CHECKING:
    from driftline.jobs.capture import CaptureTarget
    from driftline.jobs.roots import Roots
    from driftline.jobs.spec import JobSpec
    from driftline.jobs.store import JobStore

__all__ = ["JobRunner", "confine"]

_log = logging.getLogger("driftline.jobs")
_PROGRESS_EVERY_S = 0.5
#: How long a claim lasts unless renewed; renewed every sixth of it (a dead owner's job waits at most this long).
LEASE_S = 30.0


def confine(spec: JobSpec, roots: Roots) -> None:
    """Refuse a job that would read or write outside the roots (checked after globs expand).

    Called when a job is submitted and again when a job resumes after a restart; the job itself checks every file
    where it opens it (``run_local(..., roots=...)``), so a symlink swapped in between changes nothing.

    Raises:
        BadRequest: naming a path with a NUL byte, or each path outside every root.
    """
    check_job_paths(spec.inputs, spec.output)
    outside = [p for p in (*spec.inputs, spec.output) if not roots.contains(Path(p).resolve())]
    if outside:
        raise roots.refuse(outside)
    expand_inputs(spec.inputs, roots)


class JobRunner:
    """A FIFO of jobs and the one thread that runs them (so bulk scoring never starves the serving path)."""

    def __init__(
        self, store: JobStore, roots: Roots, capture: CaptureTarget | None = None, lease_s: float = LEASE_S
    ) -> None:
        """Use the store for state and progress; jobs read and write only below ``roots``; a job with
        ``capture = true`` captures its rows to ``capture`` under the job's id."""
        self._store = store
        self.owner = uuid.uuid4().hex
        self._lease_s = lease_s
        self._running: str | None = None  # the job this process runs now
        self._halt = threading.Event()
        self._keeper = threading.Thread(target=self._keep_leases, name="driftline-job-leases", daemon=True)
        self.roots = roots
        self._capture = capture
        self._queue: queue.Queue[str | None] = queue.Queue()
        # One event per queued or running job, removed when the job ends (guarded: the HTTP thread cancels).
        self._cancel: dict[str, threading.Event] = {}
        self._cancel_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="driftline-jobs", daemon=True)
        self._stopping = False

    def start(self) -> None:
        """Start the worker and queue the orphans: what a previous run (or a dead replica) left unfinished."""
        self._adopt()
        self._thread.start()
        self._keeper.start()

    def _adopt(self) -> None:
        """Queue every orphan this process does not hold yet (claimed only when its turn comes)."""
        for job_id in self._store.orphans():
            with self._cancel_lock:
                if job_id in self._cancel:
                    continue
            record = self._store.get(job_id)
            if record is None:
                continue
            # The roots (or a symlink below them) may have changed while the job waited: check again.
            try:
                confine(record.spec, self.roots)
            except DriftlineError as exc:
                _log.warning("job %s cannot resume: %s", record.id, exc)
                self._store.update(record.id, state="failed", error=str(exc))
                continue
            if record.state == "running":
                _log.info("job %s was left running by a process that stopped: resuming it", record.id)
            self._enqueue(record.id)

    def _keep_leases(self) -> None:
        """Renew the running job's lease (and stop it when a cancel was asked anywhere); adopt orphans."""
        adopted = time.monotonic()
        while not self._halt.wait(self._lease_s / 6):
            try:
                job_id = self._running
                if job_id is not None and self._store.renew(job_id, self.owner, self._lease_s):
                    with self._cancel_lock:
                        event = self._cancel.get(job_id)
                    if event is not None:
                        event.set()
                if time.monotonic() - adopted >= self._lease_s:
                    adopted = time.monotonic()
                    self._adopt()
            except Exception:  # noqa: BLE001 - a store that is down now must not end the renewals
                _log.exception("job leases: renewal failed")

    def submit(self, spec: JobSpec) -> str:
        """Record and queue a job; returns its id."""
        job_id = self._store.create(spec)
        self._enqueue(job_id)
        return job_id

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop; False if it is unknown or already finished."""
        if not self._store.request_cancel(job_id):
            return False
        with self._cancel_lock:
            event = self._cancel.get(job_id)
        if event is not None:  # None: the job ended meanwhile, nothing left to stop
            event.set()
        return True

    def pending_events(self) -> int:
        """Cancel events held: one per job queued or running (a finished job's is gone)."""
        with self._cancel_lock:
            return len(self._cancel)

    def stop(self, timeout: float = 30) -> None:
        """Stop after the current part of the running job; the job stays 'running' and resumes on restart."""
        self._stopping = True
        self._halt.set()
        with self._cancel_lock:
            events = list(self._cancel.values())
        for event in events:
            event.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _enqueue(self, job_id: str) -> None:
        with self._cancel_lock:
            self._cancel.setdefault(job_id, threading.Event())
        self._queue.put(job_id)

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                record = self._store.get(job_id)
                with self._cancel_lock:
                    cancel = self._cancel[job_id]
                if record is not None and not self._stopping and self._store.claim(job_id, self.owner, self._lease_s):
                    self._running = job_id
                    self._run(job_id, record.spec, cancel)
            finally:
                self._running = None
                with self._cancel_lock:
                    self._cancel.pop(job_id, None)

    def _run(self, job_id: str, spec: JobSpec, cancel: threading.Event) -> None:
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
            summary = run_local(
                spec,
                resume=resume,
                progress=progress,
                cancel=cancel,
                roots=self.roots,
                capture=self._capture,
                job_id=job_id,
            )
        except JobCancelled:
            # A server shutdown also sets the event: then the job stays 'running', its lease let go, and the next
            # start (or another replica) resumes it. Otherwise a cancel was asked, or the job is no longer ours.
            if self._stopping:
                self._store.release(job_id, self.owner)
            else:
                self._store.finish_cancelled(job_id, self.owner)
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
