"""Bulk scoring jobs submitted over HTTP: their spec, state and progress, so a restart can pick them up."""

from __future__ import annotations

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

    def get(self, job_id: str) -> JobRecord | None:
        """One job, or None."""
        rows = self._db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return self._record(rows[0]) if rows else None

    def recent(self, limit: int = 100) -> list[JobRecord]:
        """The newest jobs first."""
        return [
            self._record(r) for r in self._db.query("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        ]

    def unfinished(self) -> list[JobRecord]:
        """Jobs a restart must pick up (queued or running), oldest first."""
        rows = self._db.query("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at")
        return [self._record(r) for r in rows]

    @staticmethod
    def _record(row: object) -> JobRecord:
        data = dict(row)  # type: ignore[call-overload]
        data["spec"] = msgspec.json.decode(data["spec"], type=JobSpec)
        return msgspec.convert(data, JobRecord)
