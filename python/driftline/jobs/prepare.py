"""What both engines check before scoring anything: inputs, model version, column mapping, names and nulls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from driftline.backends import load_backend
from driftline.errors import BadRequest
from driftline.jobs.roots import opened
from driftline.jobs.sources import expand_inputs, plan_columns, scan
from driftline.repository import Repository

if TYPE_CHECKING:
    from driftline.backends.base import Backend
    from driftline.jobs.roots import Roots
    from driftline.jobs.sources import ColumnPlan, InputFile
    from driftline.jobs.spec import JobSpec
    from driftline.repository.layout import ModelSource

__all__ = ["PreparedJob", "prepare"]


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """A job whose inputs and model were checked; ``backend`` is one loaded instance of the model."""

    files: list[InputFile]
    source: ModelSource
    version: int
    backend: Backend
    plan: ColumnPlan


def _check_nulls(files: list[InputFile], plan: ColumnPlan, roots: Roots | None) -> None:
    counts = []
    for f in files:
        nulls = pl.any_horizontal(pl.col(c).is_null() for c in plan.model_columns).sum()
        with opened(f.path, roots) as source:
            n = scan(source, f.format).select(nulls).collect().item()
        if n:
            counts.append(f"{f.path}: {n} row(s)")
    if counts:
        raise BadRequest("rows with nulls in model columns (on_null = 'fail'): " + "; ".join(counts))


def prepare(spec: JobSpec, roots: Roots | None = None) -> PreparedJob:
    """Check everything a job needs, reporting every input problem before a row is scored.

    With ``roots`` (jobs the server runs), every input file is checked against them where it is opened.

    Raises:
        BadRequest / ModelNotFound / ConfigError: bad inputs, model reference, columns, or (``on_null = "fail"``)
            rows with nulls; inputs outside the roots.
    """
    files = expand_inputs(spec.inputs, roots)
    source = Repository(spec.repository).model(spec.model)
    version = int(spec.version) if spec.version else max(source.versions_to_load())
    if version not in source.artifacts:
        raise BadRequest(f"model {spec.model!r} has no version {version} (versions: {sorted(source.artifacts)})")
    backend = load_backend(source.backend, source.artifacts[version], source.config)
    try:
        plan = _check_columns(spec, backend, files, roots)
    except BaseException:
        backend.close()
        raise
    return PreparedJob(files, source, version, backend, plan)


def _check_columns(spec: JobSpec, backend: Backend, files: list[InputFile], roots: Roots | None) -> ColumnPlan:
    plan = plan_columns(backend.inputs, files, spec.columns, spec.passthrough, roots)
    clash = sorted({t.name for t in backend.outputs} & set(spec.passthrough))
    if clash:
        raise BadRequest(f"pass-through columns {clash} have the names of model outputs")
    if spec.on_null == "fail":
        _check_nulls(files, plan, roots)
    return plan
