"""Treatment against control on one metric, as GrowthBook's gbstats frequentist engine compares two arms
(docs/statistics.md): the anytime-valid confidence sequence (``SequentialTwoSidedTTest``) and the fixed-horizon
Welch t interval (``TwoSidedTTest``), each for the absolute difference and the relative lift (delta method).

Where an arm has fewer than 2 units or no variance gbstats gives no result; here the estimate stays and the interval
is unbounded (p-value 1), so a rule that needs a bound cannot pass on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftline.stats.bounds import fixed_p_value, fixed_radius, sequential_p_value, sequential_radius, welch_dof
from driftline.stats.samples import Interval, Sample, check_confidence, check_tuning

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Comparison", "fixed_horizon", "sequential"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """The difference of the treatment from the control.

    Attributes:
        absolute: treatment mean - control mean.
        relative: (treatment - control) / control; None when the control mean is 0.
        p_value: Two-sided, of the absolute difference against 0 (anytime-valid for the sequential engine).
    """

    absolute: Interval
    relative: Interval | None
    p_value: float


def _known(control: Sample, treatment: Sample) -> bool:
    return min(control.n, treatment.n) >= 2 and min(control.variance, treatment.variance) > 0


def _absolute_variance(control: Sample, treatment: Sample) -> float:
    return treatment.variance / treatment.n + control.variance / control.n


def _relative_variance(control: Sample, treatment: Sample) -> float:
    # Delta method for (b - a) / a, a's and b's means independent: gbstats' frequentist_variance(relative=True).
    a, b = control.mean, treatment.mean
    return treatment.variance / (a * a * treatment.n) + control.variance * b * b / (a**4 * control.n)


def _lift(control: Sample, treatment: Sample) -> float:
    return (treatment.mean - control.mean) / control.mean


def _compare(
    control: Sample,
    treatment: Sample,
    radius: Callable[[float], float],
    p_value: Callable[[float, float], float],
) -> Comparison:
    """Both differences with the engine's ``radius(variance)`` and ``p_value(estimate, variance)``."""
    known = _known(control, treatment)
    difference = treatment.mean - control.mean
    variance = _absolute_variance(control, treatment) if known else 0.0
    relative = None
    if control.mean != 0:
        relative_variance = _relative_variance(control, treatment) if known else 0.0
        relative = Interval.around(_lift(control, treatment), radius(relative_variance))
    return Comparison(Interval.around(difference, radius(variance)), relative, p_value(difference, variance))


def sequential(control: Sample, treatment: Sample, confidence: float = 0.95, tuning: float = 5000.0) -> Comparison:
    """The asymptotic confidence sequence of the difference: it covers the true difference at every look at once
    with probability ``confidence``, so the report may be read at any time.

    Args:
        control: The control arm's sample.
        treatment: The treatment arm's sample.
        confidence: Level of the sequence, within (0, 1).
        tuning: The total units (both arms) at which the sequence is tightest (gbstats' sequential tuning
            parameter, default 5000).
    """
    alpha = 1.0 - check_confidence(confidence)
    tuning = check_tuning(tuning)
    n = control.n + treatment.n
    return _compare(
        control,
        treatment,
        lambda v: float(sequential_radius(v, n, alpha, tuning)),
        lambda d, v: float(sequential_p_value(d, v, n, alpha, tuning)),
    )


def fixed_horizon(control: Sample, treatment: Sample, confidence: float = 0.95) -> Comparison:
    """Welch's t interval of the difference: valid when read once, at a sample size fixed in advance.

    Args:
        control: The control arm's sample.
        treatment: The treatment arm's sample.
        confidence: Two-sided level, within (0, 1).
    """
    alpha = 1.0 - check_confidence(confidence)
    # gbstats keeps the absolute difference's Welch degrees of freedom for the lift too.
    dof = float(welch_dof(control.variance, control.n, treatment.variance, treatment.n))
    return _compare(
        control,
        treatment,
        lambda v: float(fixed_radius(v, dof, alpha)),
        lambda d, v: float(fixed_p_value(d, v, dof)),
    )
