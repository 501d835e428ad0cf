"""Whatever the summaries (huge, tiny, degenerate), the engines give an interval whose ends are not NaN and a
p-value within [0, 1], without an exception or a floating-point warning."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from driftline.stats import Comparison, Sample, fixed_horizon, paired_fixed, paired_sequential, sequential

means = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False) | st.sampled_from([0.0, 1e-300, -1e-300, 5e-324])
variances = st.floats(min_value=0.0, max_value=1e300, allow_nan=False) | st.sampled_from([0.0, 1e-300])
samples = st.builds(Sample, st.integers(min_value=0, max_value=10**12), means, variances)
levels = st.floats(min_value=1e-6, max_value=1 - 1e-9)


def _sound(result: Comparison) -> None:
    for interval in (result.absolute, result.relative):
        if interval is not None:
            assert not math.isnan(interval.lower)
            assert not math.isnan(interval.upper)
            assert interval.lower <= interval.upper
    assert 0.0 <= result.p_value <= 1.0


@given(samples, samples, levels)
def test_two_sample_results_are_sound(control, treatment, confidence):
    _sound(sequential(control, treatment, confidence))
    _sound(fixed_horizon(control, treatment, confidence))


@given(samples, levels)
def test_paired_results_are_sound(differences, confidence):
    _sound(paired_sequential(differences, confidence))
    _sound(paired_fixed(differences, confidence))
