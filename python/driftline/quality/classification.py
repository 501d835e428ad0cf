"""Classification quality from labels and, optionally, class probabilities (docs/quality.md "Classification").

Values equal scikit-learn's (zero_division=0, log loss clipped to [eps, 1 - eps]); each metric is computed by one
function of row indices, so that the value (all rows once) and the bootstrap resamples run the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from driftline.errors import BadRequest
from driftline.quality.inputs import encode, labels, probabilities, rows
from driftline.quality.intervals import DEFAULT_RESAMPLES, Estimate, bootstrap, check_options, wilson

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["ClassQuality", "ClassificationQuality", "Confusion", "Label", "classification_quality"]

Label = str | int
EPS = float(np.finfo(np.float64).eps)


class Confusion(msgspec.Struct, frozen=True):
    """Counts of (true, predicted) pairs: counts[i][j] rows of true labels[i] predicted as labels[j]."""

    labels: list[Label]
    counts: list[list[int]]


class ClassQuality(msgspec.Struct, frozen=True):
    """One class's metrics (precision and recall: Wilson; F1: bootstrap).

    Attributes:
        label: The class.
        support: Rows whose true label it is.
        precision: Of the rows predicted as it, the share truly it (n: rows predicted as it).
        recall: Of the rows truly it, the share predicted as it (n: support).
        f1: Their harmonic mean, 2 tp / (2 tp + fp + fn) (n: rows where it is true or predicted).
    """

    label: Label
    support: int
    precision: Estimate
    recall: Estimate
    f1: Estimate


class ClassificationQuality(msgspec.Struct, frozen=True, tag_field="task", tag="classification"):
    """The quality of one set of labeled predictions (tagged ``"task": "classification"`` in JSON, so a report
    holding either kind decodes and has a schema).

    Attributes:
        n: Rows.
        confidence: Level of every interval.
        accuracy: Share of rows predicted right (Wilson).
        precision_macro: Unweighted mean of the classes' precision (bootstrap), likewise recall and f1.
        classes: Per-class metrics, in the class order of ``confusion``.
        confusion: The confusion matrix.
        log_loss: Mean cross-entropy of the true class's probability; None without probabilities.
        roc_auc: Area under the ROC curve of the positive class's probability; None unless two classes and
            probabilities are given. NaN when the rows hold one class only.
        positive: The positive class of roc_auc, when there is one.
    """

    n: int
    confidence: float
    accuracy: Estimate
    precision_macro: Estimate
    recall_macro: Estimate
    f1_macro: Estimate
    classes: list[ClassQuality]
    confusion: Confusion
    log_loss: Estimate | None = None
    roc_auc: Estimate | None = None
    positive: Label | None = None


def _confusion(idx: NDArray[np.intp], pairs: NDArray[np.intp], k: int) -> NDArray[np.int64]:
    """(b, k, k) confusion matrices of b resamples; pairs holds true * k + predicted per row."""
    b = idx.shape[0]
    flat = (np.arange(b, dtype=np.intp)[:, None] * (k * k) + pairs[idx]).ravel()
    return np.bincount(flat, minlength=b * k * k).reshape(b, k, k).astype(np.int64)


def _divide(num: NDArray[Any], den: NDArray[Any]) -> NDArray[np.float64]:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _prf(cm: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per-class precision, recall and F1, each (b, k), of (b, k, k) confusion matrices."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    predicted = cm.sum(axis=1)
    support = cm.sum(axis=2)
    # sklearn's F-beta at beta = 1: 2 tp / (support + predicted) = 2 tp / (2 tp + fn + fp).
    return _divide(tp, predicted), _divide(tp, support), _divide(2 * tp, support + predicted)


def _log_loss(idx: NDArray[np.intp], losses: NDArray[np.float64]) -> NDArray[np.float64]:
    mean: NDArray[np.float64] = losses[idx].mean(axis=1)
    return mean


def grouped_roc_auc(
    idx: NDArray[np.intp], groups: NDArray[np.intp], g: int, positive: NDArray[np.bool_]
) -> NDArray[Any]:
    """Mann-Whitney AUC per resample, ties counted half (the trapezoid area of sklearn's ROC curve).

    ``groups`` ranks each row's score among the distinct scores (g of them); a resample's counts of positive and
    negative rows per distinct score give the share of (positive, negative) pairs the score orders right.
    """
    b = idx.shape[0]
    flat = (np.arange(b, dtype=np.intp)[:, None] * g + groups[idx]).ravel()
    pos = np.bincount(flat, weights=positive[idx].ravel().astype(np.float64), minlength=b * g).reshape(b, g)
    neg = np.bincount(flat, minlength=b * g).reshape(b, g) - pos
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    auc = np.full(b, np.nan)
    np.divide((pos * (below + 0.5 * neg)).sum(axis=1), pairs, out=auc, where=pairs > 0)
    return auc


def classification_quality(
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    *,
    classes: Any = None,
    positive: Label | None = None,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> ClassificationQuality:
    """Accuracy, per-class and macro precision / recall / F1, confusion, log loss and binary ROC AUC.

    Args:
        y_true: True labels (ints or strings; integral floats count as ints), one per row.
        y_pred: Predicted labels, of the same kind.
        proba: Optional n x k class probabilities, column j for classes[j]; rows sum to 1 within 1e-6.
        classes: The class order (required with proba); every label must be in it. Default: the sorted union
            of y_true and y_pred. Macro averages run over all of them, absent ones included (as sklearn's
            ``labels=``).
        positive: ROC AUC's positive class (binary with proba); default the second class.
        confidence: Level of every interval.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Raises:
        BadRequest: Naming the argument: lengths differ, empty input, NaN or mixed labels, a label not in
            classes, proba of the wrong shape or not summing to 1, a positive class not in classes.
    """
    n = rows(y_true, y_pred)
    check_options(confidence, resamples, seed)
    if proba is not None and classes is None:
        raise BadRequest("classes is required with proba: it names the class of each probability column")
    order, true, pred = encode(labels(y_true, "y_true"), labels(y_pred, "y_pred"), classes)
    k = len(order)
    class_list: list[Label] = order.tolist()
    if positive is not None and positive not in class_list:
        raise BadRequest(f"positive class {positive!r} is not in classes {class_list!r}")
    prob = None if proba is None else probabilities(proba, n, k)

    pairs = (true * k + pred).astype(np.intp)
    losses = None if prob is None else -np.log(np.clip(prob[np.arange(n), true], EPS, 1.0 - EPS))
    auc_of: tuple[NDArray[np.intp], int, NDArray[np.bool_]] | None = None
    pos_label: Label | None = None
    if prob is not None and k == 2:
        # The class as listed (a numpy int or a bool positive reports as the plain int it matched).
        j = 1 if positive is None else class_list.index(positive)
        pos_label = class_list[j]
        distinct, groups = np.unique(prob[:, j], return_inverse=True)
        auc_of = (groups.astype(np.intp), len(distinct), true == j)

    def statistic(idx: NDArray[np.intp]) -> NDArray[np.float64]:
        """Columns: per-class F1 (k), macro precision, recall, F1, then log loss and AUC when computed."""
        precision, recall, f1 = _prf(_confusion(idx, pairs, k))
        cols = [f1, precision.mean(axis=1)[:, None], recall.mean(axis=1)[:, None], f1.mean(axis=1)[:, None]]
        if losses is not None:
            cols.append(_log_loss(idx, losses)[:, None])
        if auc_of is not None:
            cols.append(grouped_roc_auc(idx, *auc_of)[:, None])
        return np.concatenate(cols, axis=1)

    everything = np.arange(n, dtype=np.intp)[None, :]
    point = statistic(everything)[0]
    lower, upper = bootstrap(
        statistic, n, len(point), confidence=confidence, resamples=resamples, seed=seed, cost=k * k
    )

    def boot(col: int, rows_used: int) -> Estimate:
        return Estimate(float(point[col]), float(lower[col]), float(upper[col]), rows_used, "bootstrap")

    cm = _confusion(everything, pairs, k)[0]
    tp, predicted, support = np.diagonal(cm), cm.sum(axis=0), cm.sum(axis=1)
    per_class = [
        ClassQuality(
            label=class_list[c],
            support=int(support[c]),
            precision=wilson(int(tp[c]), int(predicted[c]), confidence),
            recall=wilson(int(tp[c]), int(support[c]), confidence),
            f1=boot(c, int(support[c] + predicted[c] - tp[c])),
        )
        for c in range(k)
    ]
    extra = k + 3
    log_loss = None
    if losses is not None:
        log_loss, extra = boot(extra, n), extra + 1
    return ClassificationQuality(
        n=n,
        confidence=float(confidence),
        accuracy=wilson(int(tp.sum()), n, confidence),
        precision_macro=boot(k, n),
        recall_macro=boot(k + 1, n),
        f1_macro=boot(k + 2, n),
        classes=per_class,
        confusion=Confusion(labels=class_list, counts=cm.tolist()),
        log_loss=log_loss,
        roc_auc=None if auc_of is None else boot(extra, n),
        positive=pos_label,
    )
