"""The Ray engine: the same job as a Ray Data pipeline over the job's chunks (an actor pool reads, scores and writes).

Actors load the model through the same backends and score each chunk with the same code as the local engine, and
write it as the same part file (``part-FFFFF-CCCCCC.parquet``, input file and chunk), so both engines give equal
outputs and summaries (the drift section included: each chunk's drift window travels back to the driver, which
merges them). Ray writes the whole output into a staging directory that is renamed into place at the end: the
output appears complete or not at all (the local engine's per-chunk resume does not apply to Ray jobs).
"""

from __future__ import annotations

import importlib
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline import _core
from driftline.backends import load_backend
from driftline.drift.detect import evaluate
from driftline.drift.target import drift_target
from driftline.drift.window import LiveWindow
from driftline.errors import BadRequest
from driftline.jobs.checkpoint import MANIFEST_FILE, part_name
from driftline.jobs.local import JobDrift, JobSummary, job_drift, score_frame
from driftline.jobs.prepare import PreparedJob, prepare
from driftline.jobs.sources import chunk_count, read_chunk
from driftline.repository import Repository

if TYPE_CHECKING:
    import numpy.typing as npt
    import pyarrow as pa

    from driftline.drift.target import DriftTarget
    from driftline.jobs.sources import ColumnPlan, InputFile
    from driftline.jobs.spec import JobSpec

__all__ = ["run_ray"]

# A drift window per chunk keeps this many values per numeric feature, as the local engine's one window does.
_SAMPLE_CAP = 100_000


class _ScoringActor:
    """One model instance on a Ray worker; Ray Data calls it with (file, chunk) pairs to read, score and write."""

    def __init__(
        self,
        repository: str,
        model: str,
        version: int,
        plan: ColumnPlan,
        spec: JobSpec,
        files: list[InputFile],
        staging: str,
    ) -> None:
        source = Repository(repository).model(model)
        self._backend = load_backend(source.backend, source.artifacts[version], source.config)
        self._plan = plan
        self._spec = spec
        self._files = files
        self._staging = Path(staging)
        # The driver built (and saved) the reference profile already: this only loads it.
        self._target = drift_target(source, self._backend.inputs)

    def _one(self, file: int, chunk: int) -> tuple[int, int, bytes]:
        frame = read_chunk(self._files[file], self._spec.chunk_rows, chunk)
        target = self._target
        window = LiveWindow(target.profile, sample_cap=_SAMPLE_CAP) if target is not None else None

        def observe(arrays: dict[str, npt.NDArray[Any]]) -> None:
            if window is not None and target is not None:
                window.update(arrays[target.input_name])

        out, rejected, _ = score_frame(self._backend, frame, self._plan, self._spec, observe)
        name = part_name(file, chunk)
        tmp = self._staging / f"{name}.tmp"
        out.write_parquet(tmp)
        tmp.replace(self._staging / name)
        state = window.snapshot("current").to_bytes() if window is not None and window.n_rows else b""
        return len(out), rejected, state

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        pairs = list(zip(batch.column("file").to_pylist(), batch.column("chunk").to_pylist(), strict=True))
        done = [self._one(file, chunk) for file, chunk in pairs]
        return pa.table(
            {
                "file": pa.array([f for f, _ in pairs], pa.int64()),
                "chunk": pa.array([c for _, c in pairs], pa.int64()),
                "rows": pa.array([d[0] for d in done], pa.int64()),
                "rejected": pa.array([d[1] for d in done], pa.int64()),
                "drift": pa.array([d[2] for d in done], pa.binary()),
            }
        )


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
    if spec.capture:  # before Ray is imported: the refusal needs no cluster
        raise BadRequest("--capture is supported by the local engine only (--engine local)")
    ray = _ray()
    started = time.perf_counter()
    if spec.on_null == "file":
        raise BadRequest("on_null = 'file' is supported by the local engine only; use 'reject' or 'fail' with ray")
    job_plan = prepare(spec)
    try:
        target = drift_target(job_plan.source, job_plan.backend.inputs)  # builds and saves the profile, once
    finally:
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
        return _run(ray, spec, job_plan, target, output, staging, started)
    finally:
        if owned:  # a Ray we started ends with the job: no raylet left behind, no late messages after the summary
            ray.shutdown()


def _run(
    ray: Any,
    spec: JobSpec,
    job_plan: PreparedJob,
    target: DriftTarget | None,
    output: Path,
    staging: Path,
    started: float,
) -> JobSummary:
    files, version, plan = job_plan.files, job_plan.version, job_plan.plan
    data = ray.data
    staging.mkdir(parents=True)
    tasks = [{"file": i, "chunk": c} for i, f in enumerate(files) for c in range(chunk_count(f, spec.chunk_rows))]
    # Several blocks per actor, so that the pool shares the chunks out (one block goes to one actor).
    chunks = data.from_items(tasks, override_num_blocks=min(len(tasks), 16 * spec.instances))
    # Leave a CPU for Ray Data's own tasks (scheduling, the driver's reads of results): actors that reserve every
    # CPU starve them and the pipeline stalls (seen with 2 actors on a 2-CPU machine).
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    per_actor = max(0.1, min(1.0, (cpus - 1.0) / spec.instances))
    scored = chunks.map_batches(
        _ScoringActor,
        num_cpus=per_actor,
        fn_constructor_args=(
            str(Path(spec.repository).resolve()),
            spec.model,
            version,
            plan,
            spec,
            files,
            str(staging.resolve()),
        ),
        batch_size=1,
        batch_format="pyarrow",
        compute=data.ActorPoolStrategy(size=spec.instances),
    )
    rows = rejected = 0
    parts: list[str] = []
    merged = _core.DriftWindow(target.profile.core, _SAMPLE_CAP, 0) if target is not None else None
    for batch in scored.iter_batches(batch_format="pyarrow", batch_size=None):
        for file, chunk, n, r, state in zip(*(batch.column(c).to_pylist() for c in batch.column_names), strict=True):
            rows += n
            rejected += r
            parts.append(part_name(file, chunk))
            if merged is not None and target is not None and state:
                merged.merge(_core.DriftWindow.from_bytes(target.profile.core, state))
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        output.rmdir()
    staging.replace(output)
    seconds = time.perf_counter() - started
    summary = JobSummary(
        model=spec.model,
        version=version,
        rows=rows,
        rejected=rejected,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds, 1) if seconds > 0 else 0.0,
        output=str(output),
        parts=sorted(parts),
        drift=_drift(spec, version, target, merged),
    )
    (output / MANIFEST_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    return summary


def _drift(
    spec: JobSpec, version: int, target: DriftTarget | None, merged: _core.DriftWindow | None
) -> JobDrift | None:
    """The drift section, as the local engine's: the merged windows of every chunk judged by the model's policy."""
    if target is None or merged is None or merged.n_rows == 0:
        return None
    report = evaluate(target.profile, merged, target.policy, model=spec.model, version=str(version))
    return job_drift(report, int(merged.n_rows))
