"""Offline evaluation: score a labeled file with a model version exactly as ``driftline score`` does, then report
its quality exactly as the live report does (docs/quality.md "Offline evaluation").

The scoring is the bulk job's (:func:`~driftline.jobs.prepare.prepare`, :func:`~driftline.jobs.local.score_frame`:
the same column mapping, backends and null handling); the scored rows are handed to
:func:`~driftline.feedback.report.quality_of` as labeled captured rows of one version, so the model's ``[quality]``
is read, and its outputs turned into labels and probabilities, in the one place the live report does it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import polars as pl

from driftline.backends import load_backend
from driftline.errors import BadRequest
from driftline.feedback.join import Joined
from driftline.feedback.report import proba_of, quality_of
from driftline.jobs.local import score_frame
from driftline.jobs.sources import expand_inputs, iter_chunks, plan_columns, scan
from driftline.jobs.spec import JobSpec
from driftline.quality import ClassificationQuality, RegressionQuality
from driftline.repository import Repository
from driftline.security.digests import file_sha256
from driftline.store.evaluations import NewEvaluation

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from driftline.repository.layout import ModelSource
    from driftline.repository.model_config import QualityConfig

__all__ = ["evaluate"]
_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def evaluate(
    repository: str,
    model: str,
    version: str | None,
    data: str,
    target: str,
    *,
    columns: dict[str, list[str]] | None = None,
    max_rows: int,
    batch_size: int = 1024,
    chunk_rows: int = 65_536,
    progress: Callable[[int, int], None] | None = None,
) -> NewEvaluation:
    """Score ``data`` with ``model`` (``version``: a number, or None for the newest) and compare with ``target``:
    the evaluation to store, its ``report`` the quality report's JSON.

    Every check that needs no scoring (the file, its row count against ``max_rows``, the target column and its
    type, the model's ``[quality]``, the version, the column mapping) runs before a row is read.

    Raises:
        BadRequest: no such file, a file of too many or no rows, no target column, a target of the wrong type or
            with empty values, a model without ``[quality]``, no such version, columns that do not fit the model.
        ModelNotFound: no such model.
    """
    path = Path(data)
    if not path.is_file():
        raise BadRequest(f"{data}: no such file")
    if max_rows < 1:
        raise BadRequest(f"--max-rows must be >= 1, got {max_rows}")
    (file,) = expand_inputs([str(path)])  # its format, and its row count (a Parquet file's from its metadata)
    if file.rows > max_rows:
        raise BadRequest(f"{data}: {file.rows:,} rows, more than --max-rows {max_rows:,}")
    if file.rows == 0:
        raise BadRequest(f"{data}: no rows to evaluate")
    source = Repository(repository).model(model)
    quality = _quality(source, model)
    _check_target(data, scan(file.path, file.format), target, quality.task)
    number = int(version) if version else max(source.versions_to_load())
    if number not in source.artifacts:
        raise BadRequest(f"model {model!r} has no version {number} (versions: {sorted(source.artifacts)})")
    try:
        # on_null "fail": an evaluation scores every labeled row or none (the nulls are refused below, up front).
        spec = JobSpec(
            model=model, inputs=[str(file.path)], output="", version=str(number), batch_size=batch_size, on_null="fail"
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    outputs = [quality.label_output, *([quality.score_output] if quality.score_output else [])]
    backend = load_backend(source.backend, source.artifacts[number], source.config)
    parts: list[pl.DataFrame] = []
    try:
        # The target is named as a pass-through only so that the automatic mapping leaves it out of the model's
        # columns; the scored frame holds the outputs alone (a target named like an output cannot clash), and
        # the target is taken from the chunk: no row is dropped, so the two stay aligned.
        plan = replace(plan_columns(backend.inputs, [file], columns, [target]), passthrough=[])
        _check_nulls(data, scan(file.path, file.format), plan.model_columns)
        done = 0
        for _, chunk in iter_chunks(file, chunk_rows, set()):
            scored, _, _ = score_frame(backend, chunk, plan, spec)
            parts.append(
                scored.select(pl.col(name).alias(f"out.{name}") for name in outputs).insert_column(
                    0, chunk[target].alias("target")
                )
            )
            done += chunk.height
            if progress is not None:
                progress(done, file.rows)
    finally:
        backend.close()
    rows = _labeled_rows(pl.concat(parts), number, quality.task)
    found = _quality_of(rows, quality)
    labels, scores = _reference(rows, found, quality)
    return NewEvaluation(
        model=model,
        version=number,
        sha256=file_sha256(source.artifacts[number]),
        dataset=str(file.path),
        dataset_sha256=file_sha256(file.path),
        rows=rows.height,
        target=target,
        task=quality.task,
        report=msgspec.json.encode(found),
        metrics=_headline(found),
        labels=labels,
        scores=scores,
    )


def _headline(quality: ClassificationQuality | RegressionQuality) -> dict[str, float | None]:
    """The metrics a status line shows: accuracy, macro F1 and (binary, with scores) ROC AUC; or MAE, RMSE, R²."""
    if isinstance(quality, RegressionQuality):
        picked = {"mae": quality.mae, "rmse": quality.rmse, "r2": quality.r2}
    else:
        picked = {"accuracy": quality.accuracy, "f1_macro": quality.f1_macro}
        if quality.roc_auc is not None:
            picked["roc_auc"] = quality.roc_auc
    return {k: None if np.isnan(e.value) else e.value for k, e in picked.items()}


def _quality(source: ModelSource, model: str) -> QualityConfig:
    quality = source.config.quality
    if quality is None:
        raise BadRequest(
            f"model {model!r} has no [quality] table in its config.toml (task and label_output): "
            "it does not say which output to compare with the labels"
        )
    return quality


def _check_target(data: str, source: pl.LazyFrame, target: str, task: str) -> None:
    schema = source.collect_schema()
    if target not in schema:
        raise BadRequest(f"{data}: no column {target!r} (it has {', '.join(map(repr, list(schema)[:20]))})")
    dtype = schema[target]
    if task == "classification" and dtype not in (pl.String, pl.Boolean, *_INTEGERS):
        raise BadRequest(f"{data}: column {target!r} holds {dtype}: a classification label is a string, int or bool")
    if task == "regression" and not dtype.is_numeric():
        raise BadRequest(f"{data}: column {target!r} holds {dtype}: a regression target is a number")
    empty = int(source.select(pl.col(target).null_count()).collect().item())
    if empty:
        raise BadRequest(f"{data}: column {target!r} is empty on {empty} row(s): every row to evaluate has a label")


def _check_nulls(data: str, source: pl.LazyFrame, model_columns: list[str]) -> None:
    nulls = pl.any_horizontal(pl.col(c).is_null() for c in model_columns).sum()
    count = int(source.select(nulls).collect().item())
    if count:
        raise BadRequest(f"{data}: {count} row(s) with nulls in model columns: every row to evaluate is scored")


def _labeled_rows(frame: pl.DataFrame, version: int, task: str) -> pl.DataFrame:
    """Scored rows (``target``, ``out.<output>``) as one version's labeled captured rows: with version and ts, and
    the labels typed as the feedback store gives them (bools as ints, regression targets as floats)."""
    labels = frame["target"]
    if task == "regression":
        labels = labels.cast(pl.Float64)
    elif labels.dtype == pl.Boolean or labels.dtype in _INTEGERS:
        labels = labels.cast(pl.Int64)
    return frame.with_columns(labels, pl.lit(version, pl.Int64).alias("version"), pl.lit(datetime.now(UTC)).alias("ts"))


def _quality_of(rows: pl.DataFrame, quality: QualityConfig) -> ClassificationQuality | RegressionQuality:
    """The live report's quality of labeled rows of one version (every row labeled: coverage 1)."""
    joined = Joined(
        rows=rows,
        captures=rows.select("version", "ts", pl.lit(value=True).alias("labeled")),
        captured=rows.height,
        labeled=rows.height,
        unmatched=0,
    )
    report = quality_of(
        joined, quality.task, quality.label_output, quality.score_output, quality.classes, quality.positive
    )
    found = report.versions[0].overall
    assert found is not None  # every row is labeled
    return found


def _reference(
    rows: pl.DataFrame, found: ClassificationQuality | RegressionQuality, quality: QualityConfig
) -> tuple[NDArray[np.int8] | None, NDArray[np.float64] | None]:
    """A binary classifier's (is positive, positive-class probability) per row; (None, None) for any other model."""
    if not isinstance(found, ClassificationQuality) or found.positive is None or quality.score_output is None:
        return None, None
    classes: list[Any] = list(quality.classes or [])
    column = f"out.{quality.score_output}"
    proba = np.asarray(proba_of(rows[column], column, classes, found.positive), dtype=np.float64)
    positive = (rows["target"] == found.positive).to_numpy().astype(np.int8)
    return positive, proba[:, classes.index(found.positive)]
