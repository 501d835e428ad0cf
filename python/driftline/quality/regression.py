"""Regression quality: MAE, RMSE, MAPE and R², each with a bootstrap interval (docs/quality.md "Regression").

Values equal scikit-learn's, MAPE's epsilon and R²'s finite forcing included; one function of row indices
computes them all, for the value (all rows once) and for the bootstrap resamples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from driftline.quality.inputs import rows, targets
from driftline.quality.intervals import DEFAULT_RESAMPLES, Estimate, bootstrap, check_options

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["RegressionQuality", "regression_quality"]

# sklearn's MAPE denominator floor: |y| below it counts as it, so a zero target gives a huge, finite error.
MAPE_EPSILON = float(np.finfo(np.float64).eps)


class RegressionQuality(msgspec.Struct, frozen=True, tag_field="task", tag="regression"):
    """The quality of one set of numeric predictions; every metric's interval is a bootstrap (tagged
    ``"task": "regression"`` in JSON, as ClassificationQuality is).

    Attributes:
        n: Rows.
        confidence: Level of every interval.
        mae: Mean absolute error.
        rmse: Root mean squared error.
        mape: Mean absolute percentage error, as a fraction (0.1 is 10%).
        r2: Coefficient of determination; NaN below two rows.
    """

    n: int
    confidence: float
    mae: Estimate
    rmse: Estimate
    mape: Estimate
    r2: Estimate


def _metrics(t: NDArray[np.float64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """(b, 4) MAE, RMSE, MAPE, R² of b rows of targets t and predictions p, each (b, n)."""
    err = np.abs(p - t)
    sq = err * err
    mae = err.mean(axis=1)
    rmse = np.sqrt(sq.mean(axis=1))
    mape = (err / np.maximum(np.abs(t), MAPE_EPSILON)).mean(axis=1)
    num = sq.sum(axis=1)
    dev = t - t.mean(axis=1, keepdims=True)
    den = (dev * dev).sum(axis=1)
    # sklearn's force_finite: a constant target scores 1 when predicted exactly, else 0.
    defined = (den != 0.0) & (num != 0.0)
    ratio = np.zeros_like(num)
    np.divide(num, den, out=ratio, where=defined)
    r2 = np.where(defined, 1.0 - ratio, np.where(num == 0.0, 1.0, 0.0))
    if t.shape[1] < 2:
        r2 = np.full_like(r2, np.nan)
    return np.stack([mae, rmse, mape, r2], axis=1)


def regression_quality(
    y_true: Any,
    y_pred: Any,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RegressionQuality:
    """MAE, RMSE, MAPE and R² of finite numeric predictions against finite targets.

    Raises:
        BadRequest: Naming the argument: lengths differ, empty input, a NaN or infinite value, not 1-D.
    """
    n = rows(y_true, y_pred)
    check_options(confidence, resamples, seed)
    t, p = targets(y_true, "y_true"), targets(y_pred, "y_pred")

    def statistic(idx: NDArray[np.intp]) -> NDArray[np.float64]:
        return _metrics(t[idx], p[idx])

    point = _metrics(t[None, :], p[None, :])[0]
    lower, upper = bootstrap(statistic, n, 4, confidence=confidence, resamples=resamples, seed=seed)
    mae, rmse, mape, r2 = (
        Estimate(float(point[i]), float(lower[i]), float(upper[i]), n, "bootstrap") for i in range(4)
    )
    return RegressionQuality(n=n, confidence=float(confidence), mae=mae, rmse=rmse, mape=mape, r2=r2)
