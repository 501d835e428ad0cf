"""``/v1/jobs``: submit, watch and cancel bulk scoring jobs."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Controller, delete, get, post

from driftline.errors import BadRequest, JobNotFound
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, errors
from driftline.jobs.roots import check_job_paths
from driftline.jobs.runner import confine
from driftline.jobs.spec import JobSpec, parse_model_ref
from driftline.jobs.store import JobRecord  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.lifecycle.references import resolve_version

__all__ = ["JobRequest", "JobsController"]


class JobRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /v1/jobs`` body; paths must lie inside the server's job roots."""

    model: str
    inputs: list[str]
    output: str
    batch_size: int = 1024
    chunk_rows: int = 65_536
    columns: dict[str, list[str]] | None = None
    passthrough: list[str] = []
    on_null: Literal["reject", "file", "fail"] = "reject"
    capture: bool = False
    entity_column: str | None = None


class JobsController(Controller):
    """Bulk scoring over HTTP; jobs run one at a time in the server and survive restarts."""

    path = "/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012
    security = KEYED_WHEN_CONFIGURED

    @post("", status_code=202, summary="Submit a scoring job", responses=errors(400, 401, 403, 404, 413))
    async def submit(self, services: ServicesDep, data: JobRequest) -> JobRecord:
        """Validate paths and model, queue the job, and return it (state ``queued``)."""
        runner, store = (services.jobs, services.job_store)
        check_job_paths(data.inputs, data.output)  # before the model lookup, as a bad field should be
        name, version = parse_model_ref(data.model)
        settings = services.settings
        services.table.repository.require(name)
        routes = services.table.routes(name)
        version = resolve_version(routes.aliases, name, version, routes.default_alias)
        try:
            spec = JobSpec(
                model=name,
                version=version,
                inputs=data.inputs,
                output=data.output,
                repository=settings.repository,
                batch_size=data.batch_size,
                chunk_rows=data.chunk_rows,
                columns=data.columns,
                passthrough=data.passthrough,
                on_null=data.on_null,
                capture=data.capture,
                entity_column=data.entity_column,
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        confine(spec, runner.roots)
        record = store.get(runner.submit(spec))
        assert record is not None  # just written
        return record

    @get("", summary="List jobs", responses=errors(401, 403))
    async def list_jobs(self, services: ServicesDep) -> list[JobRecord]:
        """The newest jobs first."""
        return services.job_store.recent()

    @get("/{job_id:str}", summary="One job", responses=errors(400, 401, 403, 404))
    async def get_job(self, services: ServicesDep, job_id: str) -> JobRecord:
        """State, rows done, rows/s and error of a job."""
        record = services.job_store.get(job_id)
        if record is None:
            raise JobNotFound(f"job {job_id!r} not found")
        return record

    @delete("/{job_id:str}", status_code=200, summary="Cancel a job", responses=errors(400, 401, 403, 404))
    async def cancel(self, services: ServicesDep, job_id: str) -> JobRecord:
        """Cancel a queued or running job (a running one stops after its current part)."""
        runner, store = (services.jobs, services.job_store)
        record = store.get(job_id)
        if record is None:
            raise JobNotFound(f"job {job_id!r} not found")
        if not runner.cancel(job_id):
            raise BadRequest(f"job {job_id!r} is already {record.state}")
        updated = store.get(job_id)
        assert updated is not None
        return updated
