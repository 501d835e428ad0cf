"""Wilson intervals equal the closed form (statsmodels); the bootstrap is seeded, chunked and covers the truth."""

import math

import numpy as np
import pytest

from driftline.quality import bootstrap, classification_quality, regression_quality, wilson
from driftline.quality.intervals import CHUNK_ELEMENTS

CASES = [(0, 10, 0.95), (10, 10, 0.95), (3, 10, 0.95), (50, 100, 0.9), (1, 7, 0.99), (999, 1000, 0.95)]


@pytest.mark.parametrize(("k", "n", "level"), CASES)
def test_wilson_equals_statsmodels(k, n, level):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    lo, hi = proportion.proportion_confint(k, n, alpha=1 - level, method="wilson")
    e = wilson(k, n, level)
    assert (e.value, e.n, e.method) == (k / n, n, "wilson")
    assert math.isclose(e.lower, lo, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(e.upper, hi, rel_tol=1e-12, abs_tol=1e-12)


def test_wilson_known_values():
    # 0 of 10 at 95%: upper = z^2 / (n + z^2) with z = 1.959963984540054.
    z2 = 1.959963984540054**2
    e = wilson(0, 10)
    assert e.lower == 0.0
    assert math.isclose(e.upper, z2 / (10 + z2), rel_tol=1e-12)
    assert wilson(0, 0) == wilson(0, 0, 0.5)
    assert (wilson(0, 0).lower, wilson(0, 0).upper) == (0.0, 1.0)


def test_bootstrap_is_reproducible_for_a_seed():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    p = y + rng.normal(size=200)
    a = regression_quality(y, p, seed=7, resamples=300)
    assert regression_quality(y, p, seed=7, resamples=300) == a
    assert regression_quality(y, p, seed=8, resamples=300) != a
    c = classification_quality(y > 0, p > 0, seed=3, resamples=100)
    assert classification_quality(y > 0, p > 0, seed=3, resamples=100) == c


def test_chunks_draw_the_same_resamples_as_one_draw():
    """n large enough that each chunk holds 2 resamples: the intervals equal those of one (R, n) draw."""
    n = CHUNK_ELEMENTS // 2
    resamples = 5
    x = np.random.default_rng(1).random(n)
    lower, upper = bootstrap(
        lambda idx: x[idx].mean(axis=1)[:, None], n, 1, confidence=0.9, resamples=resamples, seed=11
    )
    means = x[np.random.default_rng(11).integers(0, n, size=(resamples, n), dtype=np.intp)].mean(axis=1)
    assert lower[0] == np.quantile(means, 0.05)
    assert upper[0] == np.quantile(means, 0.95)


def test_bootstrap_covers_the_true_value():
    """200 samples of 80 rows with errors |N(0, 1)|: the 90% interval of MAE covers sqrt(2 / pi) most times."""
    rng = np.random.default_rng(2024)
    truth = math.sqrt(2 / math.pi)
    covered = 0
    for trial in range(200):
        y = rng.normal(size=80)
        q = regression_quality(y, y + rng.normal(size=80), confidence=0.9, resamples=200, seed=trial)
        covered += q.mae.lower <= truth <= q.mae.upper
    assert 0.82 <= covered / 200 <= 0.97


def test_all_undefined_resamples_give_nan_bounds():
    lower, upper = bootstrap(
        lambda idx: np.full((idx.shape[0], 2), np.nan), 10, 2, confidence=0.95, resamples=20, seed=0
    )
    assert np.isnan(lower).all()
    assert np.isnan(upper).all()
