"""`driftline._core` drift statistics against their scipy/numpy references (docs/drift.md), to 1e-9."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftline import _core

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    Make = Callable[[np.random.Generator], tuple[Any, Any]]

NUMERIC = [
    "ks",
    "wasserstein",
    "wasserstein_norm",
    "psi",
    "jensenshannon",
    "hellinger",
    "kl",
    "cramervonmises",
    "anderson",
]
CATEGORICAL = ["chi2", "chi2_gof", "jensenshannon", "psi", "fisher_exact"]


def assert_close(got: float, want: float, what: str) -> None:
    """docs/drift.md equality: 1e-9 absolute or relative, whichever is larger; inf == inf, NaN == NaN."""
    if np.isnan(want):
        assert np.isnan(got), f"{what}: got {got}, want NaN"
        return
    if np.isinf(want):
        assert got == want, f"{what}: got {got}, want {want}"
        return
    assert abs(got - want) <= 1e-9 * max(1.0, abs(want)), f"{what}: got {got!r}, want {want!r}"


def _quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def reference_numeric(ref: NDArray[np.float64], cur: NDArray[np.float64], bins: int = 10) -> dict[str, float]:
    """Every numeric statistic computed by scipy/numpy exactly as docs/drift.md defines it."""
    ref = ref[~np.isnan(ref)]
    cur = cur[~np.isnan(cur)]
    out: dict[str, float] = {}
    if len(ref) == 0 or len(cur) == 0:
        return {k: float("nan") for k in NUMERIC}
    ks = _quiet(stats.ks_2samp, ref, cur)
    out["ks"], out["ks_pvalue"] = ks.statistic, ks.pvalue
    w = _quiet(stats.wasserstein_distance, ref, cur)
    out["wasserstein"] = w
    out["wasserstein_norm"] = w / max(float(np.std(ref)), 0.001)
    edges = np.quantile(ref, np.arange(1, bins) / bins)
    p_ref = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=bins) / len(ref)
    p_cur = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=bins) / len(cur)
    f_ref, f_cur = np.maximum(p_ref, 1e-4), np.maximum(p_cur, 1e-4)
    out["psi"] = float(np.sum((f_cur - f_ref) * np.log(f_cur / f_ref)))
    out["jensenshannon"] = float(jensenshannon(p_ref, p_cur, base=2))
    out["hellinger"] = float(np.sqrt(np.sum((np.sqrt(p_ref) - np.sqrt(p_cur)) ** 2)) / np.sqrt(2))
    out["kl"] = float(stats.entropy(f_ref, f_cur))
    if len(ref) >= 2 and len(cur) >= 2:
        cvm = _quiet(stats.cramervonmises_2samp, ref, cur)
        out["cramervonmises"], out["cramervonmises_pvalue"] = cvm.statistic, cvm.pvalue
    if len(ref) + len(cur) >= 4 and len(np.unique(np.concatenate([ref, cur]))) >= 2:
        ad = _quiet(stats.anderson_ksamp, [ref, cur], variant="midrank")
        out["anderson"], out["anderson_pvalue"] = ad.statistic, ad.pvalue
    return out


def reference_categorical(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> dict[str, float]:
    """Categorical statistics over the union of categories."""
    ref = ref[~np.isnan(ref)]
    cur = cur[~np.isnan(cur)]
    keys = np.union1d(ref, cur)
    c_ref = np.array([(ref == k).sum() for k in keys])
    c_cur = np.array([(cur == k).sum() for k in keys])
    n, m = len(ref), len(cur)
    out: dict[str, float] = {}
    if len(keys) > 1:
        res = stats.chi2_contingency(np.array([c_ref, c_cur]))
        out["chi2"], out["chi2_pvalue"] = res.statistic, res.pvalue
    gof = _quiet(stats.chisquare, c_cur, c_ref * m / n)
    out["chi2_gof"], out["chi2_gof_pvalue"] = gof.statistic, gof.pvalue
    if len(keys) == 2:
        fe = stats.fisher_exact([[c_cur[1], c_cur[0]], [c_ref[1], c_ref[0]]])
        out["fisher_exact"], out["fisher_exact_pvalue"] = fe.statistic, fe.pvalue
    p_ref, p_cur = c_ref / n, c_cur / m
    f_ref, f_cur = np.maximum(p_ref, 1e-4), np.maximum(p_cur, 1e-4)
    out["psi"] = float(np.sum((f_cur - f_ref) * np.log(f_cur / f_ref)))
    out["jensenshannon"] = float(jensenshannon(p_ref, p_cur, base=2))
    return out


def check_numeric(ref: NDArray[np.float64], cur: NDArray[np.float64], bins: int = 10) -> None:
    got = _core.drift_stats(ref[:, None], cur[:, None], [False], NUMERIC, bins=bins)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = reference_numeric(ref.astype(np.float64), cur.astype(np.float64), bins)
    for key, value in want.items():
        assert_close(float(got[key][0]), float(value), key)


def _rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


NUMERIC_CASES: dict[str, Make] = {
    "normal-shift": lambda r: (r.normal(size=300), r.normal(0.3, 1.2, size=200)),
    "ties": lambda r: (r.integers(0, 6, 120).astype(float), r.integers(0, 7, 90).astype(float)),
    "constant-equal": lambda r: (np.full(30, 2.0), np.full(20, 2.0)),
    "constant-different": lambda r: (np.full(30, 2.0), np.full(20, 3.0)),
    "one-row-each": lambda r: (np.array([1.0]), np.array([2.0])),
    "one-row-ref": lambda r: (np.array([1.0]), r.normal(size=25)),
    "tiny-exact-cvm": lambda r: (r.normal(size=7), r.normal(size=6)),
    "equal-sizes": lambda r: (r.normal(size=400), r.normal(0.1, size=400)),
    "very-different-sizes": lambda r: (r.normal(size=5000), r.normal(size=7)),
    "ks-asymptotic": lambda r: (r.normal(size=12000), r.normal(0.05, size=3000)),
    "nan-values": lambda r: (np.where(r.random(200) < 0.1, np.nan, r.normal(size=200)), r.normal(size=150)),
    "infinities": lambda r: (np.r_[r.normal(size=50), np.inf], np.r_[r.normal(size=40), -np.inf]),
    "few-distinct-edges": lambda r: (np.r_[np.zeros(80), r.normal(size=20)], r.normal(size=60)),
}


@pytest.mark.parametrize("case", sorted(NUMERIC_CASES))
def test_numeric_statistics_match_scipy(case: str) -> None:
    ref, cur = NUMERIC_CASES[case](_rng())
    check_numeric(ref, cur)


@pytest.mark.parametrize("shift", [0.0, 0.08, 0.2, 0.35, 0.6])
def test_ks_asymptotic_small_effective_n(shift: float) -> None:
    """max(n, m) > 10000 with round(n m / (n + m)) <= 140: DMTW, Pomeranz and Smirnov branches."""
    r = _rng()
    check_numeric(r.normal(size=10500), r.normal(shift, size=130))


@pytest.mark.parametrize("shift", [0.0, 0.004, 0.012])
def test_ks_asymptotic_large_effective_n(shift: float) -> None:
    """round(n m / (n + m)) = 60000: Pelz-Good, Durbin matrix and the Smirnov sum."""
    r = _rng()
    ref, cur = r.normal(size=120_000), r.normal(shift, size=120_000)
    got = _core.drift_stats(ref[:, None], cur[:, None], [False], ["ks"])
    want = _quiet(stats.ks_2samp, ref, cur)
    assert_close(float(got["ks"][0]), float(want.statistic), "ks")
    assert_close(float(got["ks_pvalue"][0]), float(want.pvalue), "ks_pvalue")


@pytest.mark.parametrize("bins", [2, 5, 20])
def test_psi_bin_count_is_a_parameter(bins: int) -> None:
    r = _rng()
    check_numeric(r.normal(size=200), r.normal(0.2, size=150), bins=bins)


def test_float32_and_fortran_inputs_are_read_in_place() -> None:
    r = _rng()
    ref = r.normal(size=(300, 3))
    cur = r.normal(0.2, size=(200, 3))
    base = _core.drift_stats(ref, cur, [False] * 3, NUMERIC)
    fortran = _core.drift_stats(np.asfortranarray(ref), np.asfortranarray(cur), [False] * 3, NUMERIC)
    for key in base:
        np.testing.assert_array_equal(base[key], fortran[key])
    ref32, cur32 = ref.astype(np.float32), cur.astype(np.float32)
    got = _core.drift_stats(ref32, cur32, [False] * 3, NUMERIC)
    for j in range(3):
        want = reference_numeric(ref32[:, j].astype(np.float64), cur32[:, j].astype(np.float64))
        for key, value in want.items():
            assert_close(float(got[key][j]), float(value), f"{key}[{j}]")


CATEGORICAL_CASES: dict[str, Make] = {
    "three-codes": lambda r: (r.integers(0, 3, 200), r.integers(0, 3, 150)),
    "new-category": lambda r: (r.integers(0, 3, 200), r.integers(0, 4, 150)),
    "binary": lambda r: (r.integers(0, 2, 60), (r.random(40) < 0.7).astype(int)),
    "binary-small": lambda r: (np.array([0, 1, 1]), np.array([1, 1, 1, 0, 0])),
    "single-category": lambda r: (np.zeros(10), np.zeros(7)),
    "many-categories": lambda r: (r.integers(0, 40, 800), r.integers(5, 45, 600)),
}


@pytest.mark.parametrize("case", sorted(CATEGORICAL_CASES))
def test_categorical_statistics_match_scipy(case: str) -> None:
    ref, cur = (np.asarray(a, dtype=np.float64) for a in CATEGORICAL_CASES[case](_rng()))
    got = _core.drift_stats(ref[:, None], cur[:, None], [True], CATEGORICAL)
    want = reference_categorical(ref, cur)
    if "chi2" not in want:  # one category: dof 0, scipy defines (0, 1) for the table
        want["chi2"], want["chi2_pvalue"] = 0.0, 1.0
    for key, value in want.items():
        assert_close(float(got[key][0]), float(value), key)


@pytest.mark.parametrize(
    ("a", "b", "c", "d"), [(8, 2, 1, 5), (3, 3, 3, 3), (0, 5, 4, 1), (10, 0, 7, 9), (12, 30, 25, 18)]
)
def test_fisher_exact_tables(a: int, b: int, c: int, d: int) -> None:
    ref = np.r_[np.ones(c), np.zeros(d)]
    cur = np.r_[np.ones(a), np.zeros(b)]
    got = _core.drift_stats(ref[:, None], cur[:, None], [True], ["fisher_exact"])
    want = stats.fisher_exact([[a, b], [c, d]])
    assert_close(float(got["fisher_exact"][0]), float(want.statistic), "odds ratio")
    assert_close(float(got["fisher_exact_pvalue"][0]), float(want.pvalue), "p-value")


@pytest.mark.parametrize(("a", "c"), [(500_000, 500_170), (300_000, 300_120), (500_200, 500_000), (1_000, 1_010)])
def test_fisher_exact_a_million_rows_per_side(a: int, c: int) -> None:
    # A log-gamma pmf is ~1e-8 off at this size (ulp of ln_gamma(2e6)); scipy's own Boost cdf is ~3e-10 off.
    n = 1_000_000
    ref = np.zeros(n)
    ref[:c] = 1
    cur = np.zeros(n)
    cur[:a] = 1
    got = _core.drift_stats(ref[:, None], cur[:, None], [True], ["fisher_exact"])
    want = stats.fisher_exact([[a, n - a], [c, n - c]])
    assert 0.7 < want.pvalue < 0.9
    assert_close(float(got["fisher_exact_pvalue"][0]), float(want.pvalue), "p-value")


def evidently_binned(
    ref: NDArray[np.float64], cur: NDArray[np.float64], numeric: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Evidently's `get_binned_data` without pandas (docs/drift.md's Evidently-compatible mode)."""
    if numeric and len(np.unique(ref)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur)
    keys = np.union1d(ref, cur)
    return (
        np.array([(ref == k).sum() for k in keys]) / len(ref),
        np.array([(cur == k).sum() for k in keys]) / len(cur),
    )


def feel_zeroes(p: NDArray[np.float64]) -> NDArray[np.float64]:
    p = p.copy()
    low = p[p != 0].min()
    np.place(p, p == 0, low / 10**6 if low <= 0.0001 else 0.0001)
    return p


@pytest.mark.parametrize(
    ("numeric", "make"),
    [
        (True, lambda r: (r.normal(size=400), r.normal(0.4, size=300))),
        (True, lambda r: (r.integers(0, 10, 300).astype(float), r.integers(0, 12, 200).astype(float))),
        (False, lambda r: (r.integers(0, 5, 300).astype(float), r.integers(0, 6, 200).astype(float))),
    ],
)
def test_evidently_binning_reproduces_evidently(numeric: bool, make: Make) -> None:
    ref, cur = make(_rng())
    got = _core.drift_stats(ref[:, None], cur[:, None], [not numeric], ["psi", "jensenshannon"], binning="evidently")
    p_ref, p_cur = evidently_binned(ref, cur, numeric)
    r, c = feel_zeroes(p_ref), feel_zeroes(p_cur)
    assert_close(float(got["psi"][0]), float(np.sum((r - c) * np.log(r / c))), "psi")
    assert_close(float(got["jensenshannon"][0]), float(jensenshannon(p_ref, p_cur)), "jensenshannon")
    if numeric:
        kl = _core.drift_stats(ref[:, None], cur[:, None], [False], ["kl"], binning="evidently")
        assert_close(float(kl["kl"][0]), float(stats.entropy(r, c)), "kl")


def test_counts_and_inapplicable_statistics() -> None:
    ref = np.array([[1.0, 0.0], [np.nan, 1.0], [3.0, 1.0]])
    cur = np.array([[np.nan, 1.0], [np.nan, np.nan]])
    got = _core.drift_stats(ref, cur, [False, True], ["ks", "chi2", "psi"])
    np.testing.assert_array_equal(got["n_ref"], [2.0, 3.0])
    np.testing.assert_array_equal(got["n_cur"], [0.0, 1.0])
    np.testing.assert_array_equal(got["nan_ref"], [1.0, 0.0])
    np.testing.assert_array_equal(got["nan_cur"], [2.0, 1.0])
    np.testing.assert_array_equal(got["sampled"], [0.0, 0.0])
    assert np.isnan(got["ks"]).all()  # empty current side, then categorical
    assert np.isnan(got["chi2"][0])
    assert not np.isnan(got["chi2"][1])
    assert np.isnan(got["psi"][0])


def test_bad_input_raises_drift_input_error() -> None:
    ref = np.zeros((5, 2))
    with pytest.raises(_core.DriftInputError, match="nope"):
        _core.drift_stats(ref, ref, [False, False], ["nope"])
    with pytest.raises(_core.DriftInputError, match="expected 2 features"):
        _core.drift_stats(ref, np.zeros((5, 3)), [False, False], ["ks"])
    with pytest.raises(_core.DriftInputError, match="float64 or float32"):
        _core.drift_stats(ref.astype(np.int64), ref, [False, False], ["ks"])  # type: ignore[arg-type]
    with pytest.raises(_core.DriftInputError, match="binning"):
        _core.drift_stats(ref, ref, [False, False], ["ks"], binning="fancy")


values = st.lists(st.integers(-4, 4).map(float) | st.floats(-1e3, 1e3), min_size=1, max_size=40)


@settings(deadline=None)  # max_examples from the active profile (tests/conftest.py)
@given(ref=values, cur=values)
def test_numeric_statistics_property(ref: list[float], cur: list[float]) -> None:
    check_numeric(np.array(ref), np.array(cur))


@settings(deadline=None)  # max_examples from the active profile (tests/conftest.py)
@given(
    ref=st.lists(st.integers(0, 4), min_size=1, max_size=50),
    cur=st.lists(st.integers(0, 5), min_size=1, max_size=50),
)
def test_categorical_statistics_property(ref: list[int], cur: list[int]) -> None:
    r, c = np.array(ref, dtype=np.float64), np.array(cur, dtype=np.float64)
    got = _core.drift_stats(r[:, None], c[:, None], [True], CATEGORICAL)
    want = reference_categorical(r, c)
    if "chi2" not in want:
        want["chi2"], want["chi2_pvalue"] = 0.0, 1.0
    for key, value in want.items():
        assert_close(float(got[key][0]), float(value), key)


def test_hypothesis_profiles_are_registered_and_chosen_outside_driftline_settings() -> None:
    # The suite-wide profiles exist (tests/conftest.py), and the variable choosing one is no DRIFTLINE_* name, which
    # the server's settings loader would reject as an unknown setting.
    import os

    from tests.conftest import PROFILE_ENV

    from driftline.config import load_settings

    fast, slow = settings.get_profile("fast"), settings.get_profile("slow")
    assert fast.derandomize
    assert slow.max_examples > fast.max_examples
    active = settings.get_profile(os.environ.get(PROFILE_ENV, "fast"))
    assert settings.default.max_examples == active.max_examples
    assert not PROFILE_ENV.startswith("DRIFTLINE_")
    load_settings(environ={PROFILE_ENV: "slow"})
