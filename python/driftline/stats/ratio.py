"""The sample-ratio-mismatch check: do the arms' assignment counts fit the design's weights? A mismatch means the
assignment (or the counting) is broken, and no comparison of the arms can be trusted (docs/statistics.md "SRM")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scipy import stats as scipy_stats

from driftline.stats.samples import check_count

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SRM_THRESHOLD", "SampleRatio", "sample_ratio"]

#: gbstats' and the issue's default: a mismatch is flagged at p < 0.001.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """The chi-square goodness-of-fit test of the counts against the weights.

    Attributes:
        observed: Units assigned to each arm.
        expected: Units each arm should have had: its weight's share of all units.
        chi2: Pearson's statistic (infinite when an arm of weight 0 got units).
        p_value: Its upper tail with (arms of positive weight - 1) degrees of freedom.
        flagged: p_value < the threshold.
    """

    observed: list[int]
    expected: list[float]
    chi2: float
    p_value: float
    flagged: bool


def sample_ratio(observed: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD) -> SampleRatio:
    """Test the arms' counts ``observed`` against the design's ``weights`` (any positive scale: percents, shares).

    An arm of weight 0 is left out while it has no units; a single unit in it is a mismatch (p-value 0). This
    equals scipy's ``chisquare`` (and gbstats' ``check_srm``) when every weight is positive.
    """
    counts = [check_count("observed[]", o) for o in observed]
    if len(counts) != len(weights):
        raise ValueError(f"observed and weights must have one entry per arm, got {len(counts)} and {len(weights)}")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w < math.inf:
            raise ValueError(f"weights must be finite numbers >= 0, got {w!r}")
    weighted = [i for i, w in enumerate(weights) if w > 0]
    if len(weighted) < 2:
        raise ValueError(f"weights must give at least 2 arms a positive weight, got {list(weights)}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be a number within (0, 1), got {threshold!r}")
    total, weight = sum(counts), math.fsum(weights)
    expected = [w / weight * total for w in weights]
    if not total:
        return SampleRatio(counts, expected, 0.0, 1.0, False)
    if any(counts[i] for i, w in enumerate(weights) if w == 0):
        return SampleRatio(counts, expected, math.inf, 0.0, True)
    chi2 = math.fsum((counts[i] - expected[i]) ** 2 / expected[i] for i in weighted)
    p_value = float(scipy_stats.chi2.sf(chi2, len(weighted) - 1))
    return SampleRatio(counts, expected, chi2, p_value, p_value < threshold)
