"""One arm's summary of a metric (:class:`Sample`), the interval every test reports (:class:`Interval`), and the
checks of the options the tests share (docs/statistics.md "Samples")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Interval", "Sample", "check_confidence", "check_count", "check_tuning"]


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_count(name: str, value: int) -> int:
    """``value`` as a non-negative int; a ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float in (0, 1); a ValueError naming it otherwise."""
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0.0 < confidence < 1.0
        # So close to 1 that 1 - c rounds to 0: no finite quantile, no usable alpha.
        or 1.0 - confidence <= 0.0
    ):
        raise ValueError(f"confidence must be a number within (0, 1), got {confidence!r}")
    return float(confidence)


def check_tuning(tuning: float) -> float:
    """The confidence sequence's tuning parameter (the sample size it is tightest at) as a positive float."""
    if isinstance(tuning, bool) or not isinstance(tuning, int | float) or not 0.0 < tuning < math.inf:
        raise ValueError(f"tuning must be a positive finite number, got {tuning!r}")
    return float(tuning)


@dataclass(frozen=True, slots=True)
class Sample:
    """One arm's summary of a metric: units, mean, and the per-unit variance gbstats uses (the sample variance,
    ddof=1, for a mean; p(1 - p) for a proportion). An empty sample has mean 0 and variance 0, as in gbstats."""

    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        # Stored as plain int and floats (numpy scalars and ints coerced), so that results are floats too.
        object.__setattr__(self, "n", check_count("n", self.n))
        object.__setattr__(self, "mean", _finite("mean", self.mean))
        object.__setattr__(self, "variance", _finite("variance", self.variance))
        if self.variance < 0:
            raise ValueError(f"variance must be >= 0, got {self.variance!r}")

    @classmethod
    def of(cls, values: NDArray[np.float64]) -> Sample:
        """Mean and sample variance (ddof=1; 0 when n < 2) of a 1-d array of finite values."""
        data = np.asarray(values, dtype=np.float64)
        if data.ndim != 1:
            raise ValueError(f"values must be one-dimensional, got shape {data.shape}")
        n = int(data.size)
        if n and not np.isfinite(data).all():
            raise ValueError("values must all be finite")
        mean = float(data.mean()) if n else 0.0
        variance = float(data.var(ddof=1)) if n >= 2 else 0.0
        return cls(n, mean, variance)

    @classmethod
    def of_sums(cls, n: int, total: float, squares: float) -> Sample:
        """From running sums (n, sum of x, sum of x squared), as gbstats' SampleMeanStatistic."""
        n = check_count("n", n)
        total = _finite("total", total)
        squares = _finite("squares", squares)
        if n == 0:
            return cls(0, 0.0, 0.0)
        # Cancellation can leave a constant sample a hair below 0.
        variance = max(0.0, (squares - total * total / n) / (n - 1)) if n >= 2 else 0.0
        return cls(n, total / n, variance)

    @classmethod
    def proportion(cls, n: int, successes: int) -> Sample:
        """successes / n with variance p(1 - p), as gbstats' ProportionStatistic."""
        n = check_count("n", n)
        successes = check_count("successes", successes)
        if successes > n:
            raise ValueError(f"successes must be within [0, n], got {successes} of {n}")
        if n == 0:
            return cls(0, 0.0, 0.0)
        p = successes / n
        return cls(n, p, p * (1.0 - p))


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate with its interval; the bounds are infinite (never NaN) where the data cannot bound it."""

    estimate: float
    lower: float
    upper: float

    @classmethod
    def around(cls, estimate: float, radius: float) -> Interval:
        """``estimate`` +- ``radius`` (an infinite radius gives an unbounded interval)."""
        return cls(estimate, estimate - radius, estimate + radius)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies within [lower, upper]."""
        return self.lower <= value <= self.upper
