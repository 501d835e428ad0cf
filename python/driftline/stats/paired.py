"""Paired tests for shadow traffic, where both versions answer the same request (docs/statistics.md "Paired").

Per-request differences (treatment - control: an error, a latency) are one sample whose mean is the difference;
the pairing removes the between-request variance, so far fewer rows bound it as tightly. Correctness against
feedback is compared by McNemar's test on the discordant pairs.
"""

from __future__ import annotations

from scipy import stats as scipy_stats

from driftline.stats.bounds import fixed_p_value, fixed_radius, sequential_p_value, sequential_radius
from driftline.stats.samples import Interval, Sample, check_confidence, check_count, check_tuning
from driftline.stats.twosample import Comparison

__all__ = ["EXACT_BELOW", "mcnemar", "paired_fixed", "paired_sequential"]

#: ``mcnemar(exact=None)`` uses the exact binomial test below this many discordant pairs, the chi-square above.
EXACT_BELOW = 25


def _variance(differences: Sample) -> float:
    # The variance of the mean difference; 0 (an unbounded interval) when it cannot be estimated.
    known = differences.n >= 2 and differences.variance > 0
    return differences.variance / differences.n if known else 0.0


def paired_sequential(differences: Sample, confidence: float = 0.95, tuning: float = 5000.0) -> Comparison:
    """The asymptotic confidence sequence of the mean paired difference (the two-sample one with n pairs as its
    units); anytime-valid like :func:`driftline.stats.twosample.sequential`. ``relative`` is None."""
    alpha = 1.0 - check_confidence(confidence)
    tuning = check_tuning(tuning)
    variance = _variance(differences)
    radius = float(sequential_radius(variance, differences.n, alpha, tuning))
    p_value = float(sequential_p_value(differences.mean, variance, differences.n, alpha, tuning))
    return Comparison(Interval.around(differences.mean, radius), None, p_value)


def paired_fixed(differences: Sample, confidence: float = 0.95) -> Comparison:
    """The paired t interval of the mean difference (n - 1 degrees of freedom), read once at a fixed sample size.
    ``relative`` is None."""
    alpha = 1.0 - check_confidence(confidence)
    variance = _variance(differences)
    dof = max(differences.n - 1, 0)
    radius = float(fixed_radius(variance, dof, alpha))
    return Comparison(
        Interval.around(differences.mean, radius), None, float(fixed_p_value(differences.mean, variance, dof))
    )


def mcnemar(b: int, c: int, exact: bool | None = None) -> float:
    """McNemar's two-sided p-value, as statsmodels' ``mcnemar`` computes it.

    Args:
        b: Pairs the control got right and the treatment wrong.
        c: Pairs the treatment got right and the control wrong.
        exact: True: the exact binomial test; False: chi-square with continuity correction; None: exact when
            b + c < EXACT_BELOW. No discordant pair at all gives 1.
    """
    b, c = check_count("b", b), check_count("c", c)
    if exact is not None and not isinstance(exact, bool):
        raise ValueError(f"exact must be true, false or null, got {exact!r}")
    discordant = b + c
    if discordant == 0:
        return 1.0
    if exact or (exact is None and discordant < EXACT_BELOW):
        return float(min(1.0, 2.0 * scipy_stats.binom.cdf(min(b, c), discordant, 0.5)))
    statistic = (abs(b - c) - 1) ** 2 / discordant
    return float(scipy_stats.chi2.sf(statistic, 1))
