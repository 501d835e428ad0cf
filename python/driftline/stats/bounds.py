"""The radii and p-values of the two engines, vectorised over numpy arrays (docs/statistics.md "Formulas").

:mod:`driftline.stats.twosample` and :mod:`driftline.stats.paired` apply them to one comparison; the validity test
applies them to every look of thousands of simulated experiments at once. Where a variance is not positive (or a
fixed-horizon test has no degrees of freedom) nothing is known: the radius is infinite and the p-value 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import special

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["fixed_p_value", "fixed_radius", "sequential_p_value", "sequential_radius", "sequential_rho", "welch_dof"]


def _known(variance: NDArray[np.float64], *others: NDArray[np.float64]) -> NDArray[np.bool_]:
    known = np.isfinite(variance) & (variance > 0)
    for other in others:
        known &= other > 0
    return known


def sequential_rho(alpha: float, tuning: float) -> float:
    """The mixing parameter that makes the confidence sequence tightest at ``tuning`` units (gbstats' rho)."""
    return float(np.sqrt((-2.0 * np.log(alpha) + np.log(-2.0 * np.log(alpha) + 1.0)) / tuning))


def sequential_radius(variance: ArrayLike, n: ArrayLike, alpha: float, tuning: float) -> NDArray[np.float64]:
    """Half-width of the asymptotic confidence sequence (Waudby-Smith et al. 2023, eq. 9) of an estimate whose
    variance is ``variance`` after ``n`` units in all (both arms; for paired differences, the pairs)."""
    v = np.asarray(variance, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    known = _known(v, total)
    rho2 = sequential_rho(alpha, tuning) ** 2
    # Substitutes keep the masked entries finite, so no warning is raised on them.
    t = np.where(known, total, 1.0)
    s2 = np.where(known, v, 1.0) * t
    tr2p1 = t * rho2 + 1.0
    radius = np.sqrt(s2) * np.sqrt(2.0 * tr2p1 * np.log(np.sqrt(tr2p1) / alpha) / (t * t * rho2))
    return np.where(known, radius, np.inf)


def sequential_p_value(
    estimate: ArrayLike, variance: ArrayLike, n: ArrayLike, alpha: float, tuning: float
) -> NDArray[np.float64]:
    """The anytime-valid p-value of ``estimate`` against 0: 1 / e-value, capped at 1 (eq. 155 of the same paper).

    Computed in log space so that a large statistic gives 0 instead of overflowing exp.
    """
    d = np.asarray(estimate, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    known = _known(v, total)
    rho2 = sequential_rho(alpha, tuning) ** 2
    t = np.where(known, total, 1.0)
    st2 = d * d * t / np.where(known, v, 1.0)
    tr2p1 = t * rho2 + 1.0
    log_e = rho2 * st2 / (2.0 * tr2p1) - 0.5 * np.log(tr2p1)
    return np.where(known, np.exp(-np.maximum(log_e, 0.0)), 1.0)


def welch_dof(variance_a: ArrayLike, n_a: ArrayLike, variance_b: ArrayLike, n_b: ArrayLike) -> NDArray[np.float64]:
    """Welch-Satterthwaite degrees of freedom of a difference of two means (0 where an arm has under 2 units)."""
    va, vb = np.asarray(variance_a, dtype=np.float64), np.asarray(variance_b, dtype=np.float64)
    na, nb = np.asarray(n_a, dtype=np.float64), np.asarray(n_b, dtype=np.float64)
    known = (na >= 2) & (nb >= 2) & (va + vb > 0)
    na, nb = np.where(known, na, 2.0), np.where(known, nb, 2.0)
    qa, qb = np.where(known, va, 1.0) / na, np.where(known, vb, 1.0) / nb
    dof = (qa + qb) ** 2 / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0))
    return np.where(known, dof, 0.0)


def fixed_radius(variance: ArrayLike, dof: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """Half-width of the two-sided Student t interval at level 1 - alpha."""
    v = np.asarray(variance, dtype=np.float64)
    df = np.asarray(dof, dtype=np.float64)
    known = _known(v, df)
    radius = special.stdtrit(np.where(known, df, 1.0), 1.0 - alpha / 2.0) * np.sqrt(np.where(known, v, 1.0))
    return np.where(known, radius, np.inf)


def fixed_p_value(estimate: ArrayLike, variance: ArrayLike, dof: ArrayLike) -> NDArray[np.float64]:
    """Two-sided Student t p-value of ``estimate`` against 0 (the upper tail, so a tiny p keeps its digits)."""
    d = np.asarray(estimate, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    df = np.asarray(dof, dtype=np.float64)
    known = _known(v, df)
    statistic = np.abs(d) / np.sqrt(np.where(known, v, 1.0))
    return np.where(known, np.minimum(1.0, 2.0 * special.stdtr(np.where(known, df, 1.0), -statistic)), 1.0)
