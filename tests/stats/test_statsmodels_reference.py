"""McNemar, Holm and Benjamini-Hochberg equal statsmodels to 1e-12; the paired t interval equals scipy's
ttest_1samp, the SRM check scipy's chisquare, and the quantile interval the order statistics of the raw values.

(Wilson intervals are driftline.quality's, checked against statsmodels in tests/quality/test_intervals.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from driftline.stats import Sample, adjust, mcnemar, paired_fixed, quantile_interval, sample_ratio

contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
multitest = pytest.importorskip("statsmodels.stats.multitest")

TOL = 1e-12
DISCORDANT = [(0, 1), (1, 0), (3, 9), (9, 3), (12, 12), (0, 24), (11, 14), (30, 45), (100, 70), (400, 455), (7, 60)]


def _close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=TOL, abs_tol=TOL)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize(("b", "c"), DISCORDANT)
def test_mcnemar_equals_statsmodels(b, c, exact):
    table = [[50, b], [c, 50]]
    theirs = float(contingency.mcnemar(table, exact=exact, correction=True).pvalue)
    assert _close(mcnemar(b, c, exact=exact), theirs), (mcnemar(b, c, exact=exact), theirs)


@pytest.mark.parametrize(("b", "c"), DISCORDANT)
def test_mcnemar_default_is_exact_below_25_discordant(b, c):
    exact = b + c < 25
    theirs = float(contingency.mcnemar([[0, b], [c, 0]], exact=exact, correction=True).pvalue)
    assert _close(mcnemar(b, c), theirs)


def test_mcnemar_without_discordant_pairs_is_1():
    assert mcnemar(0, 0) == mcnemar(0, 0, exact=False) == 1.0


P_VALUES = [
    [0.01],
    [0.01, 0.04, 0.03, 0.2],
    [0.001, 0.001, 0.5, 0.049, 0.051, 0.9, 1.0, 0.0],
    list(np.random.default_rng(7).uniform(0, 0.2, 20)),
]


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh")])
@pytest.mark.parametrize("p_values", P_VALUES)
def test_corrections_equal_multipletests(p_values, ours, theirs):
    _, expected, _, _ = multitest.multipletests(p_values, method=theirs)
    got = adjust([float(p) for p in p_values], ours)
    assert len(got) == len(p_values)
    assert all(_close(g, float(e)) for g, e in zip(got, expected, strict=True)), (got, list(expected))


def test_no_correction_keeps_the_p_values():
    assert adjust([0.2, 0.01], "none") == [0.2, 0.01]
    assert adjust([], "holm") == []


@pytest.mark.parametrize(("n", "confidence"), [(2, 0.95), (15, 0.9), (400, 0.95), (5000, 0.99)])
def test_paired_fixed_equals_scipy_ttest_1samp(n, confidence):
    differences = np.random.default_rng(n).normal(0.05, 1.3, n)
    theirs = scipy_stats.ttest_1samp(differences, 0.0)
    low, high = theirs.confidence_interval(confidence)
    ours = paired_fixed(Sample.of(differences), confidence)
    assert _close(ours.absolute.estimate, float(differences.mean()))
    assert _close(ours.absolute.lower, float(low))
    assert _close(ours.absolute.upper, float(high))
    assert _close(ours.p_value, float(theirs.pvalue))
    assert ours.relative is None


@pytest.mark.parametrize(
    ("observed", "weights"),
    [([10400, 9600], [50, 50]), ([7040, 2960], [70, 30]), ([3400, 3300, 3500], [1, 1, 1]), ([5, 0], [1, 1])],
)
def test_srm_equals_scipy_chisquare(observed, weights):
    expected = np.asarray(weights, dtype=float) / sum(weights) * sum(observed)
    theirs = scipy_stats.chisquare(observed, expected)
    ours = sample_ratio(observed, weights)
    assert _close(ours.chi2, float(theirs.statistic))
    assert _close(ours.p_value, float(theirs.pvalue))
    assert ours.expected == pytest.approx(list(expected), rel=TOL)


def _order_statistic_interval(values: np.ndarray, q: float, confidence: float) -> tuple[float, float]:
    # Brute force over every rank: the widest [X(l), X(u)] whose binomial tails are each at most alpha / 2.
    n, alpha = values.size, 1 - confidence
    cdf = scipy_stats.binom.cdf(np.arange(n + 1), n, q)
    ranks = np.arange(1, n + 1)
    low = ranks[cdf[ranks - 1] <= alpha / 2]
    high = ranks[cdf[ranks - 1] >= 1 - alpha / 2]
    ordered = np.sort(values)
    lower = ordered[low.max() - 1] if low.size else -math.inf
    upper = ordered[high.min() - 1] if high.size else math.inf
    return float(lower), float(upper)


@pytest.mark.parametrize(
    ("n", "q", "confidence"), [(5, 0.5, 0.9), (60, 0.5, 0.95), (300, 0.99, 0.95), (2000, 0.9, 0.9)]
)
def test_quantile_interval_of_raw_values_is_the_order_statistic_interval(n, q, confidence):
    # Distinct integer values, one per bucket: the histogram loses nothing.
    values = np.random.default_rng(n).permutation(n * 3)[:n].astype(float)
    bounds = np.sort(values)
    got = quantile_interval(list(bounds), [1] * n, q, confidence)
    assert (got.lower, got.upper) == _order_statistic_interval(values, q, confidence)
    assert got.estimate == float(np.quantile(values, q, method="inverted_cdf"))
