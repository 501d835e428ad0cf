"""Confidence intervals of the quality metrics (docs/quality.md "Intervals").

A proportion (accuracy, a class's precision or recall) gets a Wilson score interval over its own denominator;
every other metric gets a seeded percentile bootstrap that resamples whole rows, in chunks of bounded memory.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING, Literal

import msgspec
import numpy as np

from driftline.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

__all__ = [
    "CHUNK_ELEMENTS",
    "DEFAULT_RESAMPLES",
    "MAX_RESAMPLES",
    "Estimate",
    "bootstrap",
    "check_options",
    "wilson",
]

DEFAULT_RESAMPLES = 1000
# Bounds the (resamples x statistics) matrix the percentiles are taken over.
MAX_RESAMPLES = 10_000
# Entries of one chunk's largest array (the (b, n) row indices and what is gathered through them): a few tens of
# MiB in all whatever n is; a chunk holds one resample at least.
CHUNK_ELEMENTS = 1 << 19


class Estimate(msgspec.Struct, frozen=True):
    """One metric with its interval.

    Attributes:
        value: The metric on all rows (NaN where it is undefined: R² of one row, AUC of a single class).
        lower: Lower end of the interval (NaN where no resample defines the metric).
        upper: Upper end.
        n: Rows the metric was computed on (a proportion: its denominator).
        method: "wilson", "bootstrap", or "cbpe" (an estimate before labels: CBPE's sampling-error band).
    """

    value: float
    lower: float
    upper: float
    n: int
    method: Literal["wilson", "bootstrap", "cbpe"]


def check_options(confidence: float, resamples: int, seed: int = 0) -> None:
    """Reject a confidence outside (0, 1), a resample count outside [1, MAX_RESAMPLES] or a negative seed."""
    # The second test: a level so close to 1 that 1 - (1 - c) / 2 rounds to 1.0 has no finite normal quantile.
    if not isinstance(confidence, int | float) or not 0.0 < confidence < 1.0 or 1.0 - (1.0 - confidence) / 2.0 >= 1.0:
        raise BadRequest(f"confidence must be a number in (0, 1), got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 1 <= resamples <= MAX_RESAMPLES:
        raise BadRequest(f"resamples must be an integer in [1, {MAX_RESAMPLES}], got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BadRequest(f"seed must be a non-negative integer, got {seed!r}")


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """The proportion successes / n with its Wilson score interval; n = 0 gives value 0 on [0, 1].

    The value is sklearn's (zero_division=0) so that it equals precision/recall of an empty denominator; the
    interval is then the whole range, since nothing is known.
    """
    check_options(confidence, 1)
    if not 0 <= successes <= n:
        raise BadRequest(f"successes must be in [0, n], got {successes} of {n}")
    if n == 0:
        return Estimate(0.0, 0.0, 1.0, 0, "wilson")
    p = successes / n
    z = _z(confidence)
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # At 0 or n successes the bound is exactly 0 or 1 in closed form; rounding would leave 1e-17 off it.
    lower = 0.0 if successes == 0 else max(0.0, center - half)
    upper = 1.0 if successes == n else min(1.0, center + half)
    return Estimate(p, lower, upper, n, "wilson")


def bootstrap(
    statistic: Callable[[NDArray[np.intp]], NDArray[np.float64]],
    n: int,
    width: int,
    *,
    confidence: float,
    resamples: int,
    seed: int,
    cost: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Percentile intervals (lower, upper), each of shape (width,), of ``statistic`` over row resamples.

    Args:
        statistic: (b, n) row indices -> (b, width) values; NaN where a resample leaves a metric undefined.
        n: Rows.
        width: Statistics the function returns per resample.
        confidence: Two-sided level; the interval runs between the (1 - c) / 2 and (1 + c) / 2 quantiles.
        resamples: Resamples drawn in all, the same for every metric.
        seed: Seeds the numpy Generator: the same inputs and seed give the same interval.
        cost: Entries per resample of the statistic's largest intermediate when it exceeds n (a k x k
            confusion matrix); sizes the chunks.
    """
    check_options(confidence, resamples, seed)
    chunk = max(1, CHUNK_ELEMENTS // max(n, cost, 1))
    rng = np.random.default_rng(seed)
    values = np.empty((resamples, width), dtype=np.float64)
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        values[start : start + b] = statistic(rng.integers(0, n, size=(b, n), dtype=np.intp))
    alpha = 1.0 - confidence
    lower = np.full(width, np.nan)
    upper = np.full(width, np.nan)
    # An all-NaN column (no resample defines the metric) keeps NaN bounds; nanquantile would warn on it.
    defined = ~np.isnan(values).all(axis=0)
    if defined.any():
        q = np.nanquantile(values[:, defined], [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
        lower[defined], upper[defined] = q[0], q[1]
    return lower, upper
