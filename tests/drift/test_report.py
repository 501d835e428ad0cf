"""compute_drift end to end: statistics equal their scipy/numpy references (docs/drift.md), verdicts, JSON."""

import math

import msgspec
import numpy as np
import polars as pl
import pytest
from scipy import stats

from driftline.drift import DriftReport, compute_drift
from driftline.errors import DriftInputError

TOL = 1e-9


def close(a, b):
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= TOL * max(1.0, abs(a), abs(b))


def psi_reference(ref, cur, bins=10):
    edges = np.quantile(ref, np.arange(1, bins) / bins)
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=bins) / ref.size
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=bins) / cur.size
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def test_small_reference_ks_matches_scipy(rng):
    ref = rng.normal(0, 1, (300, 3))
    cur = rng.normal(0, 1, (200, 3))
    cur[:, 1] += 0.8
    report = compute_drift(ref, cur)
    for j, f in enumerate(report.features):
        expected = stats.ks_2samp(ref[:, j], cur[:, j])
        assert f.stat == "ks"
        assert close(f.value, expected.statistic)
        assert close(f.pvalue, expected.pvalue)
        assert f.verdict == ("drift" if expected.pvalue < 0.05 else "ok")
    assert report.feature("f1").verdict == "drift"
    assert report.n_drifted == sum(f.verdict == "drift" for f in report.features)


def test_large_reference_wasserstein_norm(rng):
    ref = rng.normal(0, 2, (1500, 2))
    cur = rng.normal(0.5, 2, (500, 2))
    report = compute_drift(ref, cur)
    for j, f in enumerate(report.features):
        expected = stats.wasserstein_distance(ref[:, j], cur[:, j]) / max(np.std(ref[:, j]), 0.001)
        assert f.stat == "wasserstein_norm"
        assert f.pvalue is None
        assert close(f.value, expected)
        assert f.verdict == ("drift" if expected >= 0.1 else "ok")


def test_psi_matches_numpy(rng):
    ref = rng.normal(0, 1, (800, 2))
    cur = rng.normal(0.3, 1.2, (700, 2))
    report = compute_drift(ref, cur, stats="psi", thresholds=0.2)
    for j, f in enumerate(report.features):
        assert close(f.value, psi_reference(ref[:, j], cur[:, j]))
        assert f.threshold == 0.2
        assert sum(f.histogram.reference) == 800
        assert sum(f.histogram.current) == 700


def test_categorical_frames(frames):
    ref, cur = frames
    report = compute_drift(ref, cur)
    kinds = {f.name: (f.kind, f.stat) for f in report.features}
    assert kinds == {
        "age": ("numeric", "ks"),
        "income": ("numeric", "ks"),
        "city": ("categorical", "chi2"),
        "member": ("categorical", "fisher_exact"),
        "rooms": ("categorical", "chi2"),
    }
    city = report.feature("city")
    labels = city.histogram.labels
    table = np.array(
        [
            [ref["city"].to_list().count(c) for c in labels],
            [cur["city"].to_list().count(c) for c in labels],
        ]
    )
    expected = stats.chi2_contingency(table)
    assert close(city.value, expected.statistic)
    assert close(city.pvalue, expected.pvalue)
    m = report.feature("member")
    ones_r, ones_c = int(ref["member"].sum()), int(cur["member"].sum())
    fisher = stats.fisher_exact([[ones_c, cur.height - ones_c], [ones_r, ref.height - ones_r]])
    assert close(m.pvalue, fisher.pvalue)
    # rooms: the current window brings a category (4) the reference never saw.
    rooms = report.feature("rooms")
    assert rooms.histogram.labels[-1] == "4"
    assert rooms.histogram.reference[-1] == 0
    assert rooms.histogram.current[-1] > 0
    assert report.verdict == "drift"
    assert report.drift


def test_nan_counts_and_insufficient_data(rng):
    ref = rng.normal(0, 1, (100, 2))
    cur = rng.normal(0, 1, (50, 2))
    ref[:10, 0] = np.nan
    cur[:, 1] = np.nan
    report = compute_drift(ref, cur)
    a, b = report.features
    assert (a.n_ref, a.nan_ref, a.n_cur, a.nan_cur) == (90, 10, 50, 0)
    assert close(a.value, stats.ks_2samp(ref[10:, 0], cur[:, 0]).statistic)
    assert (b.n_cur, b.nan_cur, b.verdict) == (0, 50, "insufficient_data")
    assert math.isnan(b.value)


def test_mismatched_features_are_named(frames):
    ref, cur = frames
    with pytest.raises(DriftInputError, match="age"):
        compute_drift(ref, cur.drop("age"))
    with pytest.raises(DriftInputError, match="extra"):
        compute_drift(ref, cur.with_columns(extra=pl.lit(1.0)))
    with pytest.raises(DriftInputError, match="3 features"):
        compute_drift(np.zeros((5, 3)), np.zeros((5, 2)))
    report = compute_drift(ref, cur.with_columns(extra=pl.lit(1.0)), features=["age", "city"])
    assert [f.name for f in report.features] == ["age", "city"]


def test_significance_preset(rng):
    ref = rng.normal(0, 1, (2000, 4))
    cur = rng.normal(0, 1, (2000, 4))
    cur[:, 0] += 0.2
    report = compute_drift(ref, cur, preset="significance")
    assert {f.stat for f in report.features} == {"ks"}
    assert all(f.threshold == pytest.approx(0.0125) for f in report.features)
    assert report.feature("f0").verdict == "drift"
    assert report.verdict == "ok"  # 1 of 4 < 0.5
    assert compute_drift(ref, cur, preset="significance", drift_share=0.25).verdict == "drift"


def test_json_round_trip(frames):
    ref, cur = frames
    report = compute_drift(ref, cur)
    data = report.to_json()
    back = msgspec.json.decode(data, type=DriftReport)
    assert back == report
    as_dict = report.to_dict()
    assert as_dict["verdict"] == "drift"
    assert {f["name"] for f in as_dict["features"]} == {"age", "income", "city", "member", "rooms"}


def test_nan_statistics_become_null():
    ref = np.array([[1.0], [2.0], [3.0]] * 3)
    cur = np.full((4, 1), np.nan)
    report = compute_drift(ref, cur, stats="psi")
    assert msgspec.json.decode(report.to_json())["features"][0]["value"] is None


def test_pandas_input_matches_polars(frames):
    pd = pytest.importorskip("pandas")
    ref, cur = frames
    a = compute_drift(ref, cur)
    b = compute_drift(pd.DataFrame(ref.to_dict(as_series=False)), pd.DataFrame(cur.to_dict(as_series=False)))
    assert [(f.stat, f.value, f.verdict) for f in a.features] == [(f.stat, f.value, f.verdict) for f in b.features]


def test_core_chart_counts_equal_numpy_counts():
    import numpy as np
    import polars as pl

    from driftline.drift import ReferenceProfile

    rng = np.random.default_rng(3)
    ref = pl.DataFrame({"x": rng.normal(size=500), "c": rng.integers(0, 4, 500).astype(str)})
    cur = pl.DataFrame({"x": np.r_[rng.normal(1, 2, 298), np.nan, np.inf], "c": rng.integers(0, 6, 300).astype(str)})
    profile = ReferenceProfile.build(ref, categorical=["c"])
    encoded = profile.encode(cur)
    counted = profile.core.histograms(encoded)
    # numpy reference: searchsorted on the edges (numeric); known categories plus unseen codes (categorical)
    x = encoded[:, 0][~np.isnan(encoded[:, 0])]
    edges = profile.core.edges(0)
    assert (
        counted[0][0].tolist()
        == np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1).tolist()
    )
    assert counted[0][1] == {}
    cats = profile.core.categories(1)
    uniq, counts = np.unique(encoded[:, 1][~np.isnan(encoded[:, 1])], return_counts=True)
    known = np.isin(uniq, cats)
    assert counted[1][0].tolist() == [int(counts[uniq == c].sum()) for c in cats]
    assert counted[1][1] == {float(u): int(c) for u, c in zip(uniq[~known], counts[~known], strict=True)}
    assert counted[1][1]  # categories "4" and "5" are new
