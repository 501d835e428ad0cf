"""Bulk scoring jobs submitted over HTTP: their spec, state and progress, so a restart can pick them up.

Every process (worker, replica) sharing the store may run jobs, so a job is claimed before it runs: the claim
names the owner and a lease the owner renews while the job runs. An unfinished job whose lease ran out (its owner
died, or stopped and let it go) is an orphan any process may claim and resume. A cancel is a flag in the row, so
it reaches the owner whichever process was asked.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Literal

import msgspec

from driftline.jobs.spec import JobSpec

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = ["JobRecord", "JobState", "JobStore"]

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobRecord(msgspec.Struct, frozen=True):
    """A job as the API reports it."""

    id: str
    state: str
    spec: JobSpec
    rows_done: int
    rows_total: int | None
    rows_per_s: float | None
    error: str | None
    created_at: str
    updated_at: str


class JobStore:
    """CRUD over the ``jobs`` table."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self._db = db

    def create(self, spec: JobSpec) -> str:
        """Record a new queued job; returns its id."""
        job_id = uuid.uuid4().hex[:16]
        self._db.execute(
            "INSERT INTO jobs (id, state, spec) VALUES (?, 'queued', ?)", (job_id, msgspec.json.encode(spec).decode())
        )
        return job_id

    def update(
        self,
        job_id: str,
        *,
        state: JobState | None = None,
        rows_done: int | None = None,
        rows_total: int | None = None,
        rows_per_s: float | None = None,
        error: str | None = None,
    ) -> None:
        """Change a job's state or progress (None leaves a field as it is)."""
        self._db.execute(
            "UPDATE jobs SET state = coalesce(?, state), rows_done = coalesce(?, rows_done),"
            " rows_total = coalesce(?, rows_total), rows_per_s = coalesce(?, rows_per_s), error = coalesce(?, error),"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            (state, rows_done, rows_total, rows_per_s, error, job_id),
        )

    def claim(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Make ``owner`` the runner of a queued job, or of an unfinished one whose lease ran out; True if it is
        ``owner``'s now (state running, leased for ``lease_s``). Two processes claiming at once: one wins."""
        now = _now_us()
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = 'running', owner = ?, lease_us = ?,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE id = ? AND cancel_requested = 0 AND (state = 'queued' OR (state = 'running' AND lease_us < ?))",
                (owner, now + int(lease_s * 1e6), job_id, now),
            )
            return cursor.rowcount == 1

    def renew(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease of a running job; returns whether a cancel was asked for (or the job is no
        longer ``owner``'s: either way it must stop)."""
        lease = _now_us() + int(lease_s * 1e6)
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET lease_us = ? WHERE id = ? AND owner = ? AND state = 'running'", (lease, job_id, owner)
            )
            row = conn.execute("SELECT owner, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is None or row[0] != owner or bool(row[1])

    def release(self, job_id: str, owner: str) -> None:
        """Let a running job's lease go at once (a shutdown), so another process or the next start resumes it."""
        self._db.execute("UPDATE jobs SET lease_us = 0 WHERE id = ? AND owner = ?", (job_id, owner))

    def finish_cancelled(self, job_id: str, owner: str) -> None:
        """Record that ``owner`` stopped its running job on a cancel (nothing, if the job is no longer its)."""
        self._db.execute(
            "UPDATE jobs SET state = 'cancelled', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
            " WHERE id = ? AND owner = ? AND state = 'running'",
            (job_id, owner),
        )

    def request_cancel(self, job_id: str) -> bool:
        """Ask for a queued or running job to stop: a queued one is cancelled now, a running one by its owner at
        its next renewal. False if it is unknown or already finished."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] not in ("queued", "running"):
                return False
            conn.execute(
                "UPDATE jobs SET cancel_requested = 1, state = CASE WHEN state = 'queued' THEN 'cancelled'"
                " ELSE state END, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                (job_id,),
            )
            return True

    def orphans(self) -> list[str]:
        """Unfinished jobs no live lease holds (queued, or running past their lease), oldest first."""
        rows = self._db.query(
            "SELECT id FROM jobs WHERE cancel_requested = 0 AND (state = 'queued' OR (state = 'running'"
            " AND lease_us < ?)) ORDER BY created_at",
            (_now_us(),),
        )
        return [r["id"] for r in rows]

    def get(self, job_id: str) -> JobRecord | None:
        """One job, or None."""
        rows = self._db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return self._record(rows[0]) if rows else None

    def recent(self, limit: int = 100) -> list[JobRecord]:
        """The newest jobs first."""
        return [
            self._record(r) for r in self._db.query("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        ]

    @staticmethod
    def _record(row: object) -> JobRecord:
        data = dict(row)  # type: ignore[call-overload]
        data["spec"] = msgspec.json.decode(data["spec"], type=JobSpec)
        return msgspec.convert(data, JobRecord)


def _now_us() -> int:
    return time.time_ns() // 1000
