"""Corrections of several metrics' p-values for testing them together (docs/statistics.md "Several metrics"):
Holm's step-down (controls the family-wise error) and Benjamini-Hochberg's step-up (the false discovery rate),
as statsmodels' ``multipletests(method="holm" | "fdr_bh")``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Correction", "adjust"]

Correction = Literal["holm", "bh", "none"]


def adjust(p_values: Sequence[float], method: Correction) -> list[float]:
    """The adjusted p-values, in the order given; each is compared with the same alpha as a lone test."""
    if method not in ("holm", "bh", "none"):
        raise ValueError(f"method must be 'holm', 'bh' or 'none', got {method!r}")
    for value in p_values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"p_values must be numbers within [0, 1], got {value!r}")
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if method == "none" or m == 0:
        return [float(x) for x in p]
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    if method == "holm":
        # The i-th smallest (0-based) is multiplied by m - i, then made non-decreasing.
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        # The i-th smallest (1-based) is multiplied by m / i, then made non-decreasing from the largest down.
        adjusted = np.minimum.accumulate((ranked / (np.arange(1, m + 1) / m))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(x) for x in out]
