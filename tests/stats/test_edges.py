"""Edge cases of driftline.stats: empty and one-unit arms, zero variance, a control mean of 0, and bad options
(a ValueError naming the argument); no result is ever NaN where an interval is promised."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftline.stats import (
    Comparison,
    Interval,
    Sample,
    adjust,
    fixed_horizon,
    mcnemar,
    paired_fixed,
    paired_sequential,
    quantile_interval,
    sample_ratio,
    sequential,
)
from driftline.stats.bounds import fixed_radius, sequential_radius

UNBOUNDED = (-math.inf, math.inf)
ENGINES = [sequential, fixed_horizon]


def _bounds(interval: Interval) -> tuple[float, float]:
    return interval.lower, interval.upper


def _no_nan(result: Comparison) -> None:
    for interval in (result.absolute, result.relative):
        if interval is not None:
            assert not any(math.isnan(x) for x in (interval.estimate, interval.lower, interval.upper))
    assert 0.0 <= result.p_value <= 1.0


def test_samples_of_values_and_of_sums_agree():
    values = np.random.default_rng(1).normal(3.0, 2.0, 1000)
    a = Sample.of(values)
    b = Sample.of_sums(values.size, float(values.sum()), float((values**2).sum()))
    assert a.n == b.n == 1000
    assert math.isclose(a.mean, b.mean, rel_tol=1e-12)
    assert math.isclose(a.variance, b.variance, rel_tol=1e-9)
    assert math.isclose(a.variance, float(np.var(values, ddof=1)), rel_tol=1e-12)


def test_small_samples_have_mean_0_or_variance_0():
    assert Sample.of(np.array([])) == Sample(0, 0.0, 0.0) == Sample.of_sums(0, 0.0, 0.0) == Sample.proportion(0, 0)
    assert Sample.of(np.array([2.5])) == Sample(1, 2.5, 0.0) == Sample.of_sums(1, 2.5, 6.25)
    assert Sample.proportion(1, 1) == Sample(1, 1.0, 0.0)
    assert Sample.proportion(4, 1) == Sample(4, 0.25, 0.1875)
    # A constant sample's sums can cancel to a hair below 0: the variance is clamped.
    assert Sample.of_sums(3, 0.3, 0.03).variance >= 0.0


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Sample(-1, 0.0, 0.0), "n"),
        (lambda: Sample(2, math.nan, 0.0), "mean"),
        (lambda: Sample(2, 0.0, -1.0), "variance"),
        (lambda: Sample(2, 0.0, math.inf), "variance"),
        (lambda: Sample.of(np.zeros((2, 2))), "one-dimensional"),
        (lambda: Sample.of(np.array([1.0, math.nan])), "finite"),
        (lambda: Sample.of_sums(2, math.inf, 1.0), "total"),
        (lambda: Sample.proportion(3, 4), "successes"),
        (lambda: Sample.proportion(3, -1), "successes"),
        (lambda: Sample.proportion(True, 0), "n"),
    ],
)
def test_bad_samples_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        (Sample(0, 0.0, 0.0), Sample(0, 0.0, 0.0)),
        (Sample(1, 2.0, 0.0), Sample(5, 2.5, 1.0)),
        (Sample(5, 2.0, 1.0), Sample(1, 2.5, 0.0)),
        (Sample.proportion(200, 0), Sample.proportion(200, 0)),  # no conversion yet in either arm
        (Sample(50, 1.0, 0.0), Sample(50, 1.0, 0.0)),
    ],
)
def test_too_little_data_gives_an_unbounded_interval(engine, control, treatment):
    result = engine(control, treatment)
    _no_nan(result)
    assert _bounds(result.absolute) == UNBOUNDED
    assert result.absolute.estimate == treatment.mean - control.mean
    assert result.p_value == 1.0
    if result.relative is not None:
        assert _bounds(result.relative) == UNBOUNDED


@pytest.mark.parametrize("engine", ENGINES)
def test_one_arm_without_variance_is_bounded_by_the_other(engine):
    # A champion without an error yet against a challenger erring on 10% (where gbstats gives no result).
    control, treatment = Sample.proportion(2000, 0), Sample.proportion(2000, 200)
    result = engine(control, treatment)
    _no_nan(result)
    assert result.absolute.lower > 0
    assert result.p_value < 1e-6
    assert result.relative is None
    radius = result.absolute.upper - result.absolute.estimate
    alone = engine(Sample.proportion(2000, 0), Sample(2000, 0.1, 0.09))
    assert radius == alone.absolute.upper - alone.absolute.estimate


@pytest.mark.parametrize("engine", ENGINES)
def test_control_mean_0_has_no_relative_lift(engine):
    result = engine(Sample(1000, 0.0, 1.0), Sample(1000, 0.5, 1.0))
    _no_nan(result)
    assert result.relative is None
    assert result.absolute.lower > 0  # the absolute difference is still bounded
    assert result.p_value < 0.05


@pytest.mark.parametrize("paired", [paired_sequential, paired_fixed])
@pytest.mark.parametrize("differences", [Sample(0, 0.0, 0.0), Sample(1, 3.0, 0.0), Sample(40, 0.2, 0.0)])
def test_paired_without_variance_is_unbounded(paired, differences):
    result = paired(differences)
    _no_nan(result)
    assert _bounds(result.absolute) == UNBOUNDED
    assert result.relative is None
    assert result.p_value == 1.0


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, math.nan, True, "0.9", 1 - 1e-17])
def test_confidence_out_of_range_is_a_value_error_naming_it(confidence):
    a, b = Sample(100, 1.0, 1.0), Sample(100, 1.2, 1.0)
    for call in (
        lambda: sequential(a, b, confidence),
        lambda: fixed_horizon(a, b, confidence),
        lambda: paired_sequential(a, confidence),
        lambda: paired_fixed(a, confidence),
        lambda: quantile_interval([1.0, 2.0], [3, 4], 0.5, confidence),
    ):
        with pytest.raises(ValueError, match="confidence"):
            call()


@pytest.mark.parametrize("tuning", [0.0, -5.0, math.inf, math.nan, False])
def test_bad_tuning_names_it(tuning):
    a = Sample(100, 1.0, 1.0)
    with pytest.raises(ValueError, match="tuning"):
        sequential(a, a, 0.95, tuning)
    with pytest.raises(ValueError, match="tuning"):
        paired_sequential(a, 0.95, tuning)


def test_the_sequence_is_wider_than_the_fixed_interval_and_narrows_with_data():
    n = np.unique(np.geomspace(4, 1e7, 200).astype(np.int64)).astype(np.float64)
    sequence = sequential_radius(1.0 / n, n, 0.05, 5000.0)
    fixed = fixed_radius(1.0 / n, n - 2, 0.05)
    assert (sequence > fixed).all()
    assert (np.diff(sequence) < 0).all()


def test_sequential_p_value_is_1_at_no_difference_and_small_at_a_large_one():
    a = Sample(5000, 10.0, 4.0)
    assert sequential(a, a).p_value == 1.0
    assert sequential(a, Sample(5000, 11.0, 4.0)).p_value < 1e-12
    # A statistic large enough to overflow exp gives 0, not NaN or a warning.
    assert sequential(Sample(10**9, 10.0, 1e-6), Sample(10**9, 11.0, 1e-6)).p_value == 0.0


@pytest.mark.parametrize(
    ("observed", "weights", "threshold", "field"),
    [
        ([10, 10], [1.0], 0.001, "one entry per arm"),
        ([10, -1], [1.0, 1.0], 0.001, "observed"),
        ([10, 10], [1.0, -1.0], 0.001, "weights"),
        ([10, 10], [1.0, math.nan], 0.001, "weights"),
        ([10, 10], [1.0, 0.0], 0.001, "at least 2 arms"),
        ([10, 10], [1.0, 1.0], 0.0, "threshold"),
        ([10, 10], [1.0, 1.0], 1.0, "threshold"),
    ],
)
def test_bad_srm_input_names_the_field(observed, weights, threshold, field):
    with pytest.raises(ValueError, match=field):
        sample_ratio(observed, weights, threshold)


def test_srm_flags_52_48_and_not_50_2_49_8_at_20000():
    assert sample_ratio([10400, 9600], [50, 50]).flagged
    assert not sample_ratio([10040, 9960], [50, 50]).flagged


def test_srm_of_nothing_or_of_a_zero_weight_arm():
    empty = sample_ratio([0, 0], [50, 50])
    assert (empty.chi2, empty.p_value, empty.flagged) == (0.0, 1.0, False)
    # An arm of weight 0 is left out while empty, and any unit in it is a mismatch.
    assert sample_ratio([500, 510, 0], [1, 1, 0]).p_value == sample_ratio([500, 510], [1, 1]).p_value
    leaked = sample_ratio([500, 510, 1], [1, 1, 0])
    assert (leaked.chi2, leaked.p_value, leaked.flagged) == (math.inf, 0.0, True)


@pytest.mark.parametrize(
    ("p_values", "method", "field"),
    [
        ([0.1, 1.5], "holm", "p_values"),
        ([math.nan], "bh", "p_values"),
        ([-0.1], "bh", "p_values"),
        ([0.1], "x", "method"),
    ],
)
def test_bad_corrections_input_names_the_field(p_values, method, field):
    with pytest.raises(ValueError, match=field):
        adjust(p_values, method)


@pytest.mark.parametrize(("b", "c", "exact", "field"), [(-1, 2, None, "b"), (1, 2.5, None, "c"), (1, 2, 1, "exact")])
def test_bad_mcnemar_input_names_the_field(b, c, exact, field):
    with pytest.raises(ValueError, match=field):
        mcnemar(b, c, exact)


@pytest.mark.parametrize(
    ("bounds", "counts", "q", "field"),
    [
        ([], [], 0.5, "bounds"),
        ([1.0, 1.0], [1, 1], 0.5, "increase"),
        ([1.0, math.inf], [1, 1], 0.5, "finite"),
        ([1.0, 2.0], [1], 0.5, "counts"),
        ([1.0, 2.0], [1, 1, 1, 1], 0.5, "counts"),
        ([1.0, 2.0], [1, -1], 0.5, "counts"),
        ([1.0, 2.0], [1, 1], 1.0, "q"),
        ([1.0, 2.0], [1, 1], 0.0, "q"),
    ],
)
def test_bad_histograms_name_the_field(bounds, counts, q, field):
    with pytest.raises(ValueError, match=field):
        quantile_interval(bounds, counts, q)


def test_quantile_interval_edges():
    empty = quantile_interval([1.0, 2.0], [0, 0, 0], 0.99)
    assert math.isnan(empty.estimate)
    assert _bounds(empty) == UNBOUNDED
    # Ten values cannot bound a p99 from above; those past the last bound have no finite upper bound.
    few = quantile_interval([10.0, 20.0], [5, 5], 0.99)
    assert (few.estimate, few.upper) == (20.0, math.inf)
    overflow = quantile_interval([10.0, 20.0], [9000, 900, 100], 0.99)
    assert (overflow.estimate, overflow.upper) == (20.0, math.inf)
    assert overflow.lower == 20.0
    many = quantile_interval([10.0, 20.0, 50.0, 100.0], [90_000, 9_000, 900, 100], 0.99)
    assert (many.lower, many.estimate, many.upper) == (20.0, 20.0, 50.0)


def test_the_quantile_estimate_is_not_moved_by_rounding_of_q_times_n():
    # 0.07 * 100 is 7.000000000000001 in floating point; the 0.07-quantile of 1..100 is still the 7th value.
    values = [float(i) for i in range(1, 101)]
    assert quantile_interval(values, [1] * 100, 0.07).estimate == 7.0
    assert quantile_interval(values, [1] * 100, 0.075).estimate == 8.0
