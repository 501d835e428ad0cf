"""The Ray engine: the same job as a Ray Data pipeline (read -> map_batches on an actor pool -> write_parquet).

Actors load the model through the same backends and score batches with the same code as the local engine, so both
engines give equal outputs. Ray writes the whole output into a staging directory that is renamed into place at the
end: the output appears complete or not at all (the local engine's per-chunk resume does not apply to Ray jobs).
"""

from __future__ import annotations

import importlib
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import polars as pl

from driftline.backends import load_backend
from driftline.errors import BadRequest
from driftline.jobs.checkpoint import MANIFEST_FILE
from driftline.jobs.local import JobSummary, score_frame
from driftline.jobs.prepare import PreparedJob, prepare
from driftline.repository import Repository

if TYPE_CHECKING:
    import pyarrow as pa

    from driftline.jobs.sources import ColumnPlan
    from driftline.jobs.spec import JobSpec

__all__ = ["run_ray"]


class _ScoringActor:
    """One model instance on a Ray worker; Ray Data calls it with Arrow batches."""

    def __init__(self, repository: str, model: str, version: int, plan: ColumnPlan, spec: JobSpec) -> None:
        source = Repository(repository).model(model)
        self._backend = load_backend(source.backend, source.artifacts[version], source.config)
        self._plan = plan
        self._spec = spec

    def __call__(self, batch: pa.Table) -> pa.Table:
        frame = pl.DataFrame(pl.from_arrow(batch))
        out, _, _ = score_frame(self._backend, frame, self._plan, self._spec)
        return out.to_arrow()


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise BadRequest("the ray engine needs ray: pip install 'driftline[ray]'") from None


def run_ray(spec: JobSpec, *, address: str | None = None) -> JobSummary:
    """Run a job on Ray (a local instance when ``address`` is None, else the cluster at ``address``).

    Raises:
        BadRequest: bad inputs or options, as for the local engine, checked before Ray starts.
    """
    ray = _ray()
    started = time.perf_counter()
    if spec.on_null == "file":
        raise BadRequest("on_null = 'file' is supported by the local engine only; use 'reject' or 'fail' with ray")
    job_plan = prepare(spec)
    job_plan.backend.close()  # the actors load their own instances
    output = Path(spec.output)
    if output.exists() and any(output.iterdir()):
        raise BadRequest(f"output directory {output} is not empty")
    staging = output.with_name(output.name + ".ray-staging")
    shutil.rmtree(staging, ignore_errors=True)
    owned = not ray.is_initialized()
    if owned:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        return _run(ray, spec, job_plan, output, staging, started)
    finally:
        if owned:  # a Ray we started ends with the job: no raylet left behind, no late messages after the summary
            ray.shutdown()


def _run(ray: Any, spec: JobSpec, job_plan: PreparedJob, output: Path, staging: Path, started: float) -> JobSummary:
    files, version, plan = job_plan.files, job_plan.version, job_plan.plan
    data = ray.data
    datasets = []
    parquet = [str(f.path) for f in files if f.format == "parquet"]
    csv = [str(f.path) for f in files if f.format == "csv"]
    # Reads and writes are I/O: a quarter CPU each, so the scoring actors can have the rest of the cluster.
    io_args = {"num_cpus": 0.25}  # write_parquet takes it as remote args
    if parquet:
        datasets.append(data.read_parquet(parquet, num_cpus=0.25))
    if csv:
        datasets.append(data.read_csv(csv, num_cpus=0.25))
    dataset = datasets[0] if len(datasets) == 1 else datasets[0].union(*datasets[1:])
    # Leave a CPU for Ray Data's own tasks (file listing, reads, writes): actors that reserve every CPU starve
    # them and the pipeline stalls (seen with 2 actors on a 2-CPU machine).
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    per_actor = max(0.1, min(1.0, (cpus - 1.0) / spec.instances))
    scored = dataset.map_batches(
        _ScoringActor,
        num_cpus=per_actor,
        fn_constructor_args=(str(Path(spec.repository).resolve()), spec.model, version, plan, spec),
        batch_size=spec.batch_size,
        batch_format="pyarrow",
        compute=data.ActorPoolStrategy(size=spec.instances),
    )
    scored.write_parquet(str(staging), ray_remote_args=io_args)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        output.rmdir()
    staging.replace(output)
    parts = sorted(p.name for p in output.glob("*.parquet"))
    rows = int(pl.scan_parquet(output / "*.parquet").select(pl.len()).collect().item()) if parts else 0
    seconds = time.perf_counter() - started
    summary = JobSummary(
        model=spec.model,
        version=version,
        rows=rows,
        rejected=sum(f.rows for f in files) - rows,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds, 1) if seconds > 0 else 0.0,
        output=str(output),
        parts=parts,
    )
    (output / MANIFEST_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    return summary
