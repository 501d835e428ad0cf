"""Quality estimated before labels arrive: NannyML's confidence-based performance estimation (CBPE), binary.

:func:`fit_cbpe` takes a labeled reference (labels, positive-class scores, predicted labels) from before
deployment: it decides, as NannyML does, whether the scores need calibration, fits the isotonic calibrator if so,
and keeps the reference's sampling-error components. :func:`estimate` then takes one chunk of unlabeled rows
(scores and predicted labels) and returns the confusion matrix and metrics expected under the calibrated
probabilities, each equal to NannyML 0.13's estimate on the same chunk, with its sampling-error band (value
± 3 sampling errors, clipped to the metric's range). The estimates assume calibrated scores on the reference and
no concept drift: P(label | score) in the chunk is what it was in the reference (docs/quality.md "CBPE").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from driftline.errors import BadRequest
from driftline.quality.calibration import Isotonic, calibrate, fit_isotonic, needs_calibration
from driftline.quality.inputs import labels, length, scores

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CBPE",
    "MIN_CLASS_ROWS",
    "MIN_REFERENCE_ROWS",
    "SAMPLING_ERROR_RANGE",
    "EstimatedConfusion",
    "EstimatedMetric",
    "EstimatedQuality",
    "estimate",
    "fit_cbpe",
]

Label = str | int
# NannyML's band: the estimate ± this many sampling errors.
SAMPLING_ERROR_RANGE = 3
# A reference smaller than this leaves the calibration check's held-out splits a handful of rows each; every class
# needs rows in each of them.
MIN_REFERENCE_ROWS = 100
MIN_CLASS_ROWS = 10


class EstimatedMetric(msgspec.Struct, frozen=True):
    """One estimated quantity and its band.

    Attributes:
        value: NannyML's ``value`` of the metric (NaN where undefined: AUC of a chunk whose expected positives
            or negatives are zero).
        sampling_error: NannyML's ``sampling_error``: the reference's spread of the metric scaled to the chunk's
            rows, std / sqrt(rows x share of relevant rows). NaN where the reference has no relevant row.
        lower: value - 3 sampling errors, clipped to the metric's range (NannyML's lower_confidence_boundary).
        upper: value + 3 sampling errors, clipped (upper_confidence_boundary; a count is clipped to the rows).
    """

    value: float
    sampling_error: float
    lower: float
    upper: float


class EstimatedConfusion(msgspec.Struct, frozen=True):
    """The expected confusion matrix of a chunk, in rows (NannyML's confusion_matrix, not normalised).

    With p the calibrated probability of the positive class and d = 1 where the positive class was predicted:
    true_positive = sum d p, false_positive = sum d (1 - p), false_negative = sum (1 - d) p,
    true_negative = sum (1 - d) (1 - p).
    """

    true_positive: EstimatedMetric
    false_positive: EstimatedMetric
    true_negative: EstimatedMetric
    false_negative: EstimatedMetric


class EstimatedQuality(msgspec.Struct, frozen=True):
    """CBPE's estimates over one chunk of rows, labeled or not.

    Attributes:
        n: Rows of the chunk.
        positive: The positive class.
        calibrated: Whether the scores were calibrated (the reference needed it).
        accuracy: (TP + TN) / n of the expected matrix (NannyML's estimated accuracy).
        precision: TP / (TP + FP), 0 when it is 0 / 0 (estimated precision).
        recall: TP / (TP + FN), 0 when it is 0 / 0 (estimated recall).
        f1: TP / (TP + (FP + FN) / 2), 0 when it is 0 / 0 (estimated f1).
        roc_auc: The area under the ROC curve expected when row r is positive with probability p_r, rows ranked
            by their uncalibrated score (estimated roc_auc).
        confusion: The expected confusion matrix.
    """

    n: int
    positive: Label
    calibrated: bool
    accuracy: EstimatedMetric
    precision: EstimatedMetric
    recall: EstimatedMetric
    f1: EstimatedMetric
    roc_auc: EstimatedMetric
    confusion: EstimatedConfusion


class Spread(msgspec.Struct, frozen=True):
    """A sampling-error component of the reference: a chunk of n rows has error std / sqrt(n x fraction)."""

    std: float
    fraction: float


class CBPE(msgspec.Struct, frozen=True):
    """A CBPE fitted on a reference; a msgspec Struct, so it can be stored as JSON and used again.

    Attributes:
        classes: [negative, positive] class.
        rows: Reference rows.
        calibrator: The isotonic calibrator, None when the reference scores need no calibration.
        accuracy, precision, recall, f1, roc_auc: Each metric's sampling-error component.
        true_positive, false_positive, true_negative, false_negative: Each count's component (fraction 1).
    """

    classes: list[Label]
    rows: int
    calibrator: Isotonic | None
    accuracy: Spread
    precision: Spread
    recall: Spread
    f1: Spread
    roc_auc: Spread
    true_positive: Spread
    false_positive: Spread
    true_negative: Spread
    false_negative: Spread


def _positive_of(values: NDArray[Any], classes: list[Label], name: str) -> NDArray[np.bool_]:
    """Where ``values`` is the positive class (classes[1]); a label outside ``classes`` is refused."""
    if (values.dtype.kind == "U") != isinstance(classes[1], str):
        raise BadRequest(f"{name} holds {'strings' if values.dtype.kind == 'U' else 'ints'}, the classes do not")
    positive = values == classes[1]
    other = ~positive & (values != classes[0])
    if other.any():
        raise BadRequest(f"{name} has label {values[other][0].item()!r}, which is not one of the classes {classes!r}")
    out: NDArray[np.bool_] = positive
    return out


def _predicted(y_pred: Any, p: NDArray[np.float64], classes: list[Label]) -> NDArray[np.bool_]:
    """The predicted positives: ``y_pred``, or without it the argmax rule of [1 - p, p] (p > 0.5)."""
    if y_pred is None:
        out: NDArray[np.bool_] = p > 0.5
        return out
    m = length(y_pred, "y_pred")
    if m != len(p):
        raise BadRequest(f"y_pred has {m} rows, y_proba has {len(p)}")
    return _positive_of(labels(y_pred, "y_pred"), classes, "y_pred")


def _bernoulli(hits: int, of: int) -> float:
    """np.std of ``hits`` ones and ``of - hits`` zeros (NaN with none)."""
    if of == 0:
        return math.nan
    q = hits / of
    return math.sqrt(q * (1.0 - q))


def _auc_spread(truth: NDArray[np.bool_], p: NDArray[np.float64]) -> Spread:
    """NannyML's auroc_sampling_error_components: the spread of each positive's share of negatives ranked below.

    The minority class counts as positive. As NannyML's, the positive ranks exclude rank 0 (a positive scored
    lowest is left out and shifts the later ones by one); NannyML's sort is numpy's default, ties included.
    """
    y, s = truth.astype(np.int64), p
    if y.mean() > 0.5:
        y, s = 1 - y, 1.0 - s
    ranked = y[np.argsort(s)]
    ranks = np.flatnonzero(ranked)
    ranks = ranks[ranks > 0]
    negatives = len(y) - int(y.sum())
    below = (ranks - np.arange(len(ranks))) / negatives
    return Spread(float(np.std(below)), int(y.sum()) / len(y))


def fit_cbpe(y_true: Any, y_proba: Any, y_pred: Any = None, *, positive: Label = 1) -> CBPE:
    """Fit CBPE on a labeled reference (NannyML's ``CBPE(problem_type="classification_binary").fit``).

    Args:
        y_true: The reference labels: two classes (ints, bools or strings), ``positive`` one of them.
        y_proba: Each row's probability of the positive class, in [0, 1].
        y_pred: Each row's predicted label; default: positive where y_proba > 0.5 (the argmax of [1 - p, p]).
        positive: The positive class.

    Raises:
        BadRequest: naming the argument: lengths differ; fewer than MIN_REFERENCE_ROWS rows; labels of more or
            fewer than two classes, or fewer than MIN_CLASS_ROWS of one; ``positive`` not among them; a
            probability outside [0, 1]; a predicted label that is not one of the classes.
    """
    n = length(y_true, "y_true")
    if n < MIN_REFERENCE_ROWS:
        raise BadRequest(f"y_true has {n} rows: a CBPE reference needs {MIN_REFERENCE_ROWS} labeled rows at least")
    p = scores(y_proba, n, "y_proba")
    truth_labels = labels(y_true, "y_true")
    distinct = np.unique(truth_labels)
    if len(distinct) != 2:
        raise BadRequest(f"y_true holds {len(distinct)} classes: CBPE estimates a binary classifier, two classes")
    found: list[Label] = distinct.tolist()
    if isinstance(positive, bool):  # bool labels are read as ints (inputs.labels)
        positive = int(positive)
    if positive not in found or isinstance(positive, str) != isinstance(found[0], str):
        raise BadRequest(f"positive class {positive!r} is not one of y_true's classes {found!r}")
    classes = [found[1 - found.index(positive)], found[found.index(positive)]]
    truth = _positive_of(truth_labels, classes, "y_true")
    positives = int(truth.sum())
    if min(positives, n - positives) < MIN_CLASS_ROWS:
        raise BadRequest(
            f"y_true has {min(positives, n - positives)} rows of one class: a CBPE reference needs "
            f"{MIN_CLASS_ROWS} of each"
        )
    pred = _predicted(y_pred, p, classes)

    y = truth.astype(np.int64)
    calibrator = fit_isotonic(p, y.astype(np.float64)) if needs_calibration(y, p) else None
    tp = int((truth & pred).sum())
    fp = int((~truth & pred).sum())
    fn = int((truth & ~pred).sum())
    tn = n - tp - fp - fn
    relevant = tp + fp + fn
    # NannyML's F1 component: the 0/1 relevant rows scaled so that their mean is F1, 2 tp / (2 tp + fp + fn).
    f1_scale = relevant / ((fp + fn) * 0.5 + tp) if relevant else math.nan
    return CBPE(
        classes=classes,
        rows=n,
        calibrator=calibrator,
        accuracy=Spread(_bernoulli(tp + tn, n), 1.0),
        precision=Spread(_bernoulli(tp, tp + fp), (tp + fp) / n),
        recall=Spread(_bernoulli(tp, tp + fn), (tp + fn) / n),
        f1=Spread(f1_scale * _bernoulli(tp, relevant), relevant / n),
        roc_auc=_auc_spread(truth, p),
        true_positive=Spread(_bernoulli(tp, n), 1.0),
        false_positive=Spread(_bernoulli(fp, n), 1.0),
        true_negative=Spread(_bernoulli(tn, n), 1.0),
        false_negative=Spread(_bernoulli(fn, n), 1.0),
    )


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 else 0.0


def _band(value: float, spread: Spread, n: int, scale: float = 1.0, top: float = 1.0) -> EstimatedMetric:
    """value with its sampling error std / sqrt(n x fraction) (x ``scale`` for counts), band clipped to [0, top]."""
    den = n * spread.fraction
    error = spread.std / math.sqrt(den) * scale if den > 0 and not math.isnan(spread.std) else math.nan
    if math.isnan(error) or math.isnan(value):
        return EstimatedMetric(value, error, math.nan, math.nan)
    reach = SAMPLING_ERROR_RANGE * error
    return EstimatedMetric(value, error, max(0.0, value - reach), min(top, value + reach))


def _roc_auc(calibrated: NDArray[np.float64], raw: NDArray[np.float64]) -> float:
    """NannyML's estimate_roc_auc: the ROC curve of expected positives (cumulated calibrated probabilities) and
    expected negatives down the rows ranked by uncalibrated score, its trapezoid area.

    Rows of equal score form one step (NannyML steps through them in sort order, which then sets the area), and
    the cumulated counts are not rounded to 5 decimals as NannyML's are: equal to it within 1e-6 on untied scores.
    """
    order = np.argsort(-raw, kind="stable")
    ranked = raw[order]
    tps = np.cumsum(calibrated[order])
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    tps = np.concatenate([[0.0], tps[ends]])
    fps = np.concatenate([[0.0], ends + 1.0]) - tps
    if tps[-1] <= 0.0 or fps[-1] <= 0.0:
        return math.nan
    tpr, fpr = tps / tps[-1], fps / fps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def estimate(cbpe: CBPE, y_proba: Any, y_pred: Any = None) -> EstimatedQuality:
    """CBPE's estimates on one chunk of rows (NannyML's ``estimate`` on a chunk of these rows).

    Args:
        cbpe: Fitted by :func:`fit_cbpe`.
        y_proba: Each row's (uncalibrated) probability of the positive class, in [0, 1].
        y_pred: Each row's predicted label, one of ``cbpe.classes``; default: positive where y_proba > 0.5.

    Raises:
        BadRequest: naming the argument: no rows, lengths differ, a probability outside [0, 1], a predicted
            label that is not one of the classes.
    """
    n = length(y_proba, "y_proba")
    if n == 0:
        raise BadRequest("y_proba is empty: an estimate needs one row at least")
    raw = scores(y_proba, n, "y_proba")
    pred = _predicted(y_pred, raw, cbpe.classes)
    p = raw if cbpe.calibrator is None else calibrate(cbpe.calibrator, raw)
    tp = float(np.sum(np.where(pred, p, 0.0)))
    fp = float(np.sum(np.where(pred, 1.0 - p, 0.0)))
    fn = float(np.sum(np.where(pred, 0.0, p)))
    tn = float(np.sum(np.where(pred, 0.0, 1.0 - p)))

    def count(value: float, spread: Spread) -> EstimatedMetric:
        # A count's sampling error is n times its share's, std / sqrt(n).
        return _band(value, spread, n, scale=n, top=float(n))

    return EstimatedQuality(
        n=n,
        positive=cbpe.classes[1],
        calibrated=cbpe.calibrator is not None,
        accuracy=_band((tp + tn) / n, cbpe.accuracy, n),
        precision=_band(_ratio(tp, tp + fp), cbpe.precision, n),
        recall=_band(_ratio(tp, tp + fn), cbpe.recall, n),
        f1=_band(_ratio(tp, tp + 0.5 * (fp + fn)), cbpe.f1, n),
        roc_auc=_band(_roc_auc(p, raw), cbpe.roc_auc, n),
        confusion=EstimatedConfusion(
            true_positive=count(tp, cbpe.true_positive),
            false_positive=count(fp, cbpe.false_positive),
            true_negative=count(tn, cbpe.true_negative),
            false_negative=count(fn, cbpe.false_negative),
        ),
    )
