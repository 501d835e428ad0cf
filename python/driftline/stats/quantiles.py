"""A distribution-free interval of a quantile (a p99 latency) from a histogram (docs/statistics.md "Quantiles").

Of n values, the r-th smallest lies below the true q-quantile exactly when at least r values do, and how many do
is Binomial(n, q) whatever the distribution; two order statistics chosen by that binomial's tails bound the
quantile with at least the stated confidence. A histogram knows each value only up to its bucket, so every value
is taken at its bucket's upper bound: the interval then bounds the quantile as the buckets resolve it (the upper
bound of the bucket it falls in).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats as scipy_stats

from driftline.stats.samples import Interval, check_confidence, check_count

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["quantile_interval"]


def _tops(bounds: Sequence[float], counts: Sequence[int]) -> list[float]:
    tops: list[float] = []
    for b in bounds:
        if isinstance(b, bool) or not isinstance(b, int | float) or not math.isfinite(b):
            raise ValueError(f"bounds must be finite numbers, got {b!r}")
        if tops and b <= tops[-1]:
            raise ValueError(f"bounds must increase strictly, got {b!r} after {tops[-1]!r}")
        tops.append(float(b))
    if not tops:
        raise ValueError("bounds must list at least one bucket bound")
    if len(counts) not in (len(tops), len(tops) + 1):
        raise ValueError(f"counts must have one entry per bound (and may have one past the last), got {len(counts)}")
    # The count past the last bound has no finite upper bound.
    return tops + [math.inf] * (len(counts) - len(tops))


def quantile_interval(bounds: Sequence[float], counts: Sequence[int], q: float, confidence: float = 0.95) -> Interval:
    """The q-quantile of a histogram with its order-statistic interval, each at a bucket's upper bound.

    Args:
        bounds: Bucket upper bounds, increasing.
        counts: counts[i] values are <= bounds[i] and > bounds[i - 1]; a last entry past the last bound counts the
            values above it (its upper bound is infinite).
        q: The quantile, within (0, 1) (0.99 for a p99).
        confidence: Two-sided level, within (0, 1).

    An end the data cannot bound (too few values, or an order statistic in the bucket past the last bound) is
    infinite; no values at all give a NaN estimate.
    """
    tops = _tops(bounds, counts)
    cumulative = np.cumsum([check_count("counts[]", c) for c in counts], dtype=np.int64)
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
        raise ValueError(f"q must be a number within (0, 1), got {q!r}")
    alpha = 1.0 - check_confidence(confidence)
    n = int(cumulative[-1])
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf)

    def at(rank: int) -> float:
        # The upper bound of the bucket that holds the rank-th smallest value (1-based).
        return tops[int(np.searchsorted(cumulative, rank, side="left"))]

    binomial = scipy_stats.binom(n, q)
    # The largest l with P(B <= l - 1) <= alpha / 2 and the smallest u with P(B <= u - 1) >= 1 - alpha / 2, B the
    # number of values below the quantile: the quantile lies in [X(l), X(u)] with probability >= 1 - alpha.
    k = int(binomial.ppf(alpha / 2.0))
    low = k + 1 if binomial.cdf(k) <= alpha / 2.0 else k
    high = int(binomial.ppf(1.0 - alpha / 2.0)) + 1
    lower = at(low) if low >= 1 else -math.inf
    upper = at(high) if high <= n else math.inf
    return Interval(at(max(1, math.ceil(q * n))), lower, upper)
