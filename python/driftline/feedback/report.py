"""Live quality of joined rows per version and per window (time buckets, or every N labeled rows).

Every window is computed by driftline.quality on exactly its labeled rows; its coverage is labeled / captured of
the captured rows that fall in it. With a CBPE reference for a version (a binary classifier with a score output),
each window also carries the quality estimated from all its captured rows, labeled or not (driftline.quality.cbpe).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import polars as pl

from driftline.errors import BadRequest
from driftline.feedback.targets import check_task
from driftline.quality import ClassificationQuality, RegressionQuality, classification_quality, regression_quality
from driftline.quality.cbpe import CBPE, EstimatedQuality, estimate
from driftline.quality.intervals import DEFAULT_RESAMPLES

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from driftline.feedback.join import Joined

__all__ = ["QualityReport", "VersionQuality", "WindowQuality", "quality_of"]

Quality = ClassificationQuality | RegressionQuality
_WINDOW = "_window"


class WindowQuality(msgspec.Struct, frozen=True):
    """One window of one version: its captured rows' time span, coverage and quality (None without labels).

    ``estimated``: CBPE's estimate over the window's captured rows (labeled or not) that have a prediction and a
    score; None without a reference for the version.
    """

    start: datetime
    end: datetime
    captured: int
    labeled: int
    coverage: float
    quality: Quality | None
    estimated: EstimatedQuality | None = None


class VersionQuality(msgspec.Struct, frozen=True):
    """One version: all its rows together (``overall``, ``estimated``) and window by window."""

    version: int
    captured: int
    labeled: int
    coverage: float
    overall: Quality | None
    windows: list[WindowQuality]
    estimated: EstimatedQuality | None = None


class QualityReport(msgspec.Struct, frozen=True):
    """Quality per version, versions in ascending order; ``unmatched`` labels name no captured row."""

    task: str
    unmatched: int
    versions: list[VersionQuality]


def quality_of(
    joined: Joined,
    task: str,
    label_output: str,
    score_output: str | None = None,
    classes: list[Any] | None = None,
    positive: Any = None,
    window: timedelta | int | None = None,
    *,
    references: Mapping[int, CBPE] | None = None,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> QualityReport:
    """Quality of the predictions in output ``label_output`` against the labels, per version and window.

    Args:
        joined: The join of captured rows and labels.
        task: "classification" or "regression".
        label_output: The output holding the predicted label (classification) or value (regression).
        score_output: Classification only: the output holding class probabilities, one per class of ``classes``
            (a list per row), or, with two classes, the positive class's probability (a number per row).
        classes: The class order of ``score_output`` (required with it), as driftline.quality takes it.
        positive: ROC AUC's positive class (default the second class).
        window: A time span (windows aligned to the epoch), a count N (a window closes at every Nth labeled
            row of a version, in capture order), or None (one window per version).
        references: Per version, a CBPE fitted on labeled data from before deployment (``fit_cbpe``); the
            versions named get ``estimated`` quality per window. Classification with a score output only.
        confidence: Level of every interval; resamples and seed: the bootstrap's.

    Raises:
        BadRequest: an unknown task, a missing output column, a window that is not positive, references
            without a score output, and every refusal of driftline.quality (labels of the wrong kind for the
            predictions, a prediction that is not one of a reference's classes, ...).
    """
    kind = check_task(task)
    prediction = f"out.{label_output}"
    score = None if score_output is None else f"out.{score_output}"
    for column in (prediction, score):
        if column is not None and column not in joined.rows.columns:
            raise BadRequest(f"captured rows: no output column {column!r}")
    if score is not None and kind == "regression":
        raise BadRequest("score_output: only a classification has a score output")
    if references and score is None:
        raise BadRequest("references: CBPE estimates a binary classifier's quality from its score output; none given")
    rows = _windows(joined.rows, window)
    captures = _windows(joined.captures, window)

    options: dict[str, Any] = {"confidence": confidence, "resamples": resamples, "seed": seed}

    def measure(part: pl.DataFrame | None) -> Quality | None:
        if part is None or part.height == 0:
            return None
        y_pred = _flat(part[prediction], prediction)
        if kind == "regression":
            return regression_quality(part["target"].to_numpy(), y_pred, **options)
        proba = None if score is None else proba_of(part[score], score, classes, positive)
        return classification_quality(
            part["target"].to_list(), y_pred, proba, classes=classes, positive=positive, **options
        )

    # One partition per version, then per window: each row is visited once, whatever the number of windows.
    labeled = rows.partition_by("version", as_dict=True)
    versions = []
    for (version,), span in sorted(captures.partition_by("version", as_dict=True).items()):
        mine = labeled.get((version,), rows.clear())
        parts = mine.partition_by(_WINDOW, as_dict=True)
        reference = None if references is None or score is None else references.get(int(version))
        guess = _estimator(reference, prediction, score, classes, positive)
        windows = []
        for (w,), cut in sorted(span.partition_by(_WINDOW, as_dict=True).items()):
            part = parts.get((w,))
            n = 0 if part is None else part.height
            start, end = _span(cut, w, window)
            windows.append(WindowQuality(start, end, cut.height, n, n / cut.height, measure(part), guess(cut)))
        overall, estimated = measure(mine), guess(span)
        coverage = mine.height / span.height
        versions.append(VersionQuality(int(version), span.height, mine.height, coverage, overall, windows, estimated))
    return QualityReport(task=kind, unmatched=joined.unmatched, versions=versions)


def _estimator(
    reference: CBPE | None, prediction: str, score: str | None, classes: list[Any] | None, positive: Any
) -> Callable[[pl.DataFrame], EstimatedQuality | None]:
    """The CBPE estimate of a frame of captured rows (those with a prediction and a score); None without a
    reference or such rows."""
    if reference is None or score is None:
        return lambda _: None

    def guess(cut: pl.DataFrame) -> EstimatedQuality | None:
        rows = cut.drop_nulls([prediction, score])  # NannyML also leaves out rows without an output
        if rows.height == 0:
            return None
        try:
            proba = np.asarray(proba_of(rows[score], score, classes, positive), dtype=np.float64)
        except (TypeError, ValueError):
            proba = np.empty(0)  # ragged lists: refused just below
        if proba.ndim != 2 or proba.shape[1] != 2 or classes is None or len(classes) != 2:
            raise BadRequest(f"{score}: CBPE estimates a binary classifier, two probabilities per row")
        if reference.classes[1] not in classes:
            raise BadRequest(f"references: positive class {reference.classes[1]!r} is not in classes {classes!r}")
        try:
            return estimate(
                reference, proba[:, classes.index(reference.classes[1])], _flat(rows[prediction], prediction)
            )
        except BadRequest as e:  # name the output, not estimate's argument
            raise BadRequest(f"{prediction if str(e).startswith('y_pred') else score}: {e}") from None

    return guess


def _windows(frame: pl.DataFrame, window: timedelta | int | None) -> pl.DataFrame:
    """``frame`` with each row's window number (per version, in capture order)."""
    if window is None:
        return frame.with_columns(pl.lit(0, pl.Int64).alias(_WINDOW))
    if isinstance(window, timedelta):
        size = window // timedelta(microseconds=1)
        if size <= 0:
            raise BadRequest(f"window must be a positive time span, got {window}")
        micros = pl.col("ts").dt.epoch("us")
        return frame.with_columns((micros // size).alias(_WINDOW))
    if isinstance(window, bool) or window <= 0:
        raise BadRequest(f"window must be a positive count of labeled rows, got {window}")
    # Labeled rows before this one, in the version's capture order: the Nth labeled row closes its window. The
    # labeled rows alone (no "labeled" column) count by position, and so get the same windows as in captures.
    if "labeled" in frame.columns:
        labeled = pl.col("labeled").cast(pl.Int64)
        before = (labeled.cum_sum() - labeled).over("version")
    else:
        before = pl.int_range(pl.len(), dtype=pl.Int64).over("version")
    return frame.with_columns((before // window).alias(_WINDOW))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _span(cut: pl.DataFrame, w: int, window: timedelta | int | None) -> tuple[datetime, datetime]:
    """A time window's own bounds; otherwise the first and last capture in it."""
    if isinstance(window, timedelta):
        start = _EPOCH + w * window
        return start, start + window
    first, last = cut["ts"].min(), cut["ts"].max()
    return first, last  # type: ignore[return-value]


def _flat(values: pl.Series, name: str) -> Any:
    """A 1-D array of one value per row; an output captured as a one-element list per row counts as its value."""
    if isinstance(values.dtype, pl.List | pl.Array):
        if (values.list.len() if isinstance(values.dtype, pl.List) else values.arr.len()).ne(1).any():
            raise BadRequest(f"{name}: holds several values per row, not one prediction")
        values = values.list.first() if isinstance(values.dtype, pl.List) else values.arr.first()
    if values.null_count():
        raise BadRequest(f"{name}: a labeled row has no prediction (null)")
    return values.to_list() if values.dtype == pl.String else values.to_numpy()


def proba_of(values: pl.Series, name: str, classes: list[Any] | None, positive: Any) -> Any:
    """An n x k probability array: the captured per-class list, or [1 - p, p] of a binary positive score."""
    if classes is None:
        raise BadRequest(f"classes is required with {name}: it names the class of each probability")
    if isinstance(values.dtype, pl.List | pl.Array):
        if values.null_count():
            raise BadRequest(f"{name}: a labeled row has no probabilities (null)")
        return values.to_list()  # driftline.quality checks the shape and that each row sums to 1
    if len(classes) != 2:
        raise BadRequest(f"{name}: one score per row is a binary classifier's, but classes has {len(classes)}")
    p = _flat(values, name).astype(np.float64)
    j = classes.index(positive) if positive is not None and positive in classes else 1
    out = np.empty((len(p), 2), dtype=np.float64)
    out[:, j], out[:, 1 - j] = p, 1.0 - p
    return out
