"""A distribution-free interval of a quantile (a p99 latency) from a histogram (docs/statistics.md
"Quantiles").

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

__all__ = ["histogram_quantile", "quantile_interval"]


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


def _cumulative(bounds: Sequence[float], counts: Sequence[int], q: float) -> tuple[list[float], np.ndarray]:
    """The buckets' upper bounds and cumulative counts, with every argument checked."""
    tops = _tops(bounds, counts)
    cumulative = np.cumsum([check_count("counts[]", c) for c in counts], dtype=np.int64)
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
        raise ValueError(f"q must be a number within (0, 1), got {q!r}")
    return tops, cumulative


def _at(tops: list[float], cumulative: np.ndarray, rank: int) -> float:
    """The upper bound of the bucket that holds the rank-th smallest value (1-based)."""
    return tops[int(np.searchsorted(cumulative, rank, side="left"))]


def _point(tops: list[float], cumulative: np.ndarray, q: float) -> float:
    """The ceil(q n)-th value's bucket bound; q n is shaved by a relative 1e-12 so that a product like 0.07 * 100 =
    7.000000000000001 still picks the 7th."""
    n = int(cumulative[-1])
    return _at(tops, cumulative, max(1, math.ceil(q * n * (1.0 - 1e-12))))


def histogram_quantile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float:
    """The q-quantile of a histogram at the upper bound of the bucket holding it (the estimate of
    :func:`quantile_interval`, without its interval): infinite in the bucket past the last bound, NaN with no values."""
    tops, cumulative = _cumulative(bounds, counts, q)
    if int(cumulative[-1]) == 0:
        return math.nan
    return _point(tops, cumulative, q)


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
    tops, cumulative = _cumulative(bounds, counts, q)
    alpha = 1.0 - check_confidence(confidence)
    n = int(cumulative[-1])
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf)

    binomial = scipy_stats.binom(n, q)
    # The largest l with P(B <= l - 1) <= alpha / 2 and the smallest u with P(B <= u - 1) >= 1 - alpha / 2, B the
    # number of values below the quantile: the quantile lies in [X(l), X(u)] with probability >= 1 - alpha.
    k = int(binomial.ppf(alpha / 2.0))
    low = k + 1 if binomial.cdf(k) <= alpha / 2.0 else k
    high = int(binomial.ppf(1.0 - alpha / 2.0)) + 1
    lower = _at(tops, cumulative, low) if low >= 1 else -math.inf
    upper = _at(tops, cumulative, high) if high <= n else math.inf
    return Interval(_point(tops, cumulative, q), lower, upper)
