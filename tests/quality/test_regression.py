"""regression_quality equals scikit-learn: MAE, RMSE, MAPE (its epsilon included), R² (its finite forcing)."""

import math

import numpy as np
import pytest
from sklearn import metrics

from driftline.quality import regression_quality

TOL = 1e-12


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))


def check(true, pred):
    q = regression_quality(true, pred, resamples=30)
    assert q.n == len(true)
    assert close(q.mae.value, metrics.mean_absolute_error(true, pred))
    assert close(q.rmse.value, metrics.root_mean_squared_error(true, pred))
    assert close(q.mape.value, metrics.mean_absolute_percentage_error(true, pred))
    assert close(q.r2.value, metrics.r2_score(true, pred))
    return q


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    true = rng.lognormal(2.0, 1.0, 500)
    q = check(true, true + rng.normal(0.0, 3.0, 500))
    for e in (q.mae, q.rmse, q.mape, q.r2):
        assert e.lower <= e.value <= e.upper
        assert (e.n, e.method) == (500, "bootstrap")


def test_mape_of_zero_targets_uses_epsilon():
    q = check([0.0, 1.0, -2.0], [0.5, 1.0, -1.0])
    assert q.mape.value > 1e14  # 0.5 / eps dominates, finite


@pytest.mark.parametrize(("true", "pred"), [([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]), ([3.0, 3.0, 3.0], [1.0, 3.0, 3.0])])
def test_constant_target_r2_is_forced_finite(true, pred):
    q = check(true, pred)
    assert q.r2.value == (1.0 if true == pred else 0.0)


def test_one_row_r2_is_nan():
    q = regression_quality([1.0], [2.0], resamples=10)
    assert math.isnan(q.r2.value)
    assert math.isnan(q.r2.lower)
    assert q.mae.value == q.mae.lower == q.mae.upper == 1.0
