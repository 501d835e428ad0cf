"""Calibration of a binary classifier's scores, as NannyML's CBPE calibrates them (docs/quality.md "CBPE").

NannyML fits scikit-learn's ``IsotonicRegression(out_of_bounds="clip", increasing=True)`` on the reference scores
and labels when its ``needs_calibration`` says the scores benefit from it. Both are reimplemented here in numpy
(scikit-learn is a test dependency only): :func:`fit_isotonic` and :func:`calibrate` equal scikit-learn's fit and
predict to 1e-12, and :func:`needs_calibration` draws the very splits of scikit-learn's
``StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42)``, so it decides as NannyML does.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from driftline.quality.classification import grouped_roc_auc

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

__all__ = ["Isotonic", "calibrate", "fit_isotonic", "needs_calibration"]

# scikit-learn's _make_unique merges scores closer than float64's resolution into one point.
_RESOLUTION = float(np.finfo(np.float64).resolution)
# NannyML's needs_calibration: its splits, test share, seed and ECE bins.
SPLITS, TEST_SIZE, SPLIT_SEED, ECE_BINS = 10, 0.1, 42, 10
# Scores this well separated need no calibration (NannyML skips the check above this reference AUC).
SEPARATED_AUC = 0.999


class Isotonic(msgspec.Struct, frozen=True):
    """A fitted isotonic calibrator: the interpolation knots (scikit-learn's X_thresholds_ and y_thresholds_).

    A score is clipped to [x[0], x[-1]] and mapped by linear interpolation between the knots.
    """

    x: list[float]
    y: list[float]


def _pava(y: list[float], w: list[float]) -> list[float]:
    """Pool-adjacent-violators: the non-decreasing fit of y (weights w) minimising the weighted squared error."""
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y, w, strict=True):
        mean, total, size = value, weight, 1
        # Merge backwards while the last block's mean is not below the new one's: one pass, amortised O(n).
        while means and means[-1] >= mean:
            last_w = weights.pop()
            mean = (means.pop() * last_w + mean * total) / (last_w + total)
            total += last_w
            size += sizes.pop()
        means.append(mean)
        weights.append(total)
        sizes.append(size)
    out: list[float] = []
    for mean, size in zip(means, sizes, strict=True):
        out.extend([mean] * size)
    return out


def fit_isotonic(scores: NDArray[np.float64], labels: NDArray[np.float64]) -> Isotonic:
    """scikit-learn's ``IsotonicRegression(increasing=True).fit(scores, labels)``: its knots.

    Scores within float64's resolution of a group's first score form one point whose label is the group's mean
    (``_make_unique``); the fit is then pooled, and points inside a run of equal fitted values dropped.
    """
    order = np.lexsort((labels, scores))
    x, y = scores[order], labels[order]
    starts = [0]
    if len(x) > 1:
        gaps = np.diff(x)
        if (gaps < _RESOLUTION).any():  # near-duplicates chain from the group's first score: walk them
            first = x[0]
            for j in range(1, len(x)):
                if x[j] - first >= _RESOLUTION:
                    starts.append(j)
                    first = x[j]
        else:
            starts.extend((np.flatnonzero(gaps) + 1).tolist())
    bounds = np.asarray(starts, dtype=np.intp)
    counts = np.diff(np.append(bounds, len(x))).astype(np.float64)
    ux = x[bounds]
    uy = np.add.reduceat(y, bounds) / counts
    fitted = np.asarray(_pava(uy.tolist(), counts.tolist()), dtype=np.float64)
    keep = np.ones(len(fitted), dtype=bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return Isotonic(x=ux[keep].tolist(), y=fitted[keep].tolist())


def calibrate(iso: Isotonic, scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """scikit-learn's ``predict`` with ``out_of_bounds="clip"``: linear interpolation between the knots."""
    x = np.asarray(iso.x, dtype=np.float64)
    y = np.asarray(iso.y, dtype=np.float64)
    if len(x) == 1:
        return np.full(len(scores), y[0])
    out: NDArray[np.float64] = np.interp(np.clip(scores, x[0], x[-1]), x, y)
    return out


def _approximate_mode(counts: NDArray[np.int64], draws: int, rng: np.random.RandomState) -> NDArray[np.int64]:
    """scikit-learn's _approximate_mode: per-class draws, ties in the remainders broken by ``rng``."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (where,) = np.where(remainder == value)
            now = min(len(where), need)
            floored[rng.choice(where, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    out: NDArray[np.int64] = floored.astype(np.int64)
    return out


def stratified_splits(y: NDArray[np.int64]) -> Iterator[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """The (train, test) row indices of ``StratifiedShuffleSplit(10, test_size=0.1, random_state=42).split``.

    Every class needs two rows at least (the caller checks it).
    """
    n = len(y)
    n_test = math.ceil(TEST_SIZE * n)
    n_train = n - n_test
    _, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    by_class = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(SPLIT_SEED)
    for _ in range(SPLITS):
        train_n = _approximate_mode(counts, n_train, rng)
        test_n = _approximate_mode(counts - train_n, n_test, rng)
        train: list[NDArray[np.intp]] = []
        test: list[NDArray[np.intp]] = []
        for c, rows in enumerate(by_class):
            shuffled = rows.take(rng.permutation(counts[c]), mode="clip")
            train.append(shuffled[: train_n[c]])
            test.append(shuffled[train_n[c] : train_n[c] + test_n[c]])
        yield rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _expected_calibration_error(y: NDArray[np.float64], p: NDArray[np.float64]) -> float:
    """NannyML's ECE: rows sorted by probability, cut into ECE_BINS equal-count bins (the last takes the rest),
    the row-weighted mean of |mean probability - mean label| over the bins."""
    n = len(p)
    bins = ECE_BINS if n > 2 * ECE_BINS else n // 2
    width = n // bins
    edges = np.asarray(range(0, n + 1, width))
    edges[-1] = n
    order = p.argsort()  # numpy's default sort, as NannyML's: ties fall into bins in the same order
    p, y = p[order], y[order]
    terms = [(hi - lo) / n * abs(p[lo:hi].mean() - y[lo:hi].mean()) for lo, hi in itertools.pairwise(edges)]
    return float(np.sum(terms))


def needs_calibration(y: NDArray[np.int64], p: NDArray[np.float64]) -> bool:
    """NannyML's ``needs_calibration``: whether isotonic calibration lowers the ECE on held-out rows.

    False for one class or a reference AUC above 0.999; otherwise the scores of the ten test splits are pooled,
    calibrated by an isotonic fit on each split's training rows, and calibration is needed when the pooled ECE
    after it is lower than before.
    """
    if len(np.unique(y)) == 1:
        return False
    distinct, groups = np.unique(p, return_inverse=True)
    rows = np.arange(len(p), dtype=np.intp)[None, :]
    if float(grouped_roc_auc(rows, groups.astype(np.intp), len(distinct), y == 1)[0]) > SEPARATED_AUC:
        return False
    labels = y.astype(np.float64)
    truth, raw, calibrated = [], [], []
    for train, test in stratified_splits(y):
        iso = fit_isotonic(p[train], labels[train])
        truth.append(labels[test])
        raw.append(p[test])
        calibrated.append(calibrate(iso, p[test]))
    pooled = np.concatenate(truth)
    return _expected_calibration_error(pooled, np.concatenate(raw)) > _expected_calibration_error(
        pooled, np.concatenate(calibrated)
    )
