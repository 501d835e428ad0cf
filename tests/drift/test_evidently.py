"""Cross-check against Evidently itself (skipped when it is not installed): same statistics, same verdicts."""

import warnings

import numpy as np
import pytest

from driftline.drift import compute_drift

evidently = pytest.importorskip("evidently")
pd = pytest.importorskip("pandas")

TOL = 1e-9


def _evidently_values(ref, cur, numeric, categorical, metrics=None):
    from evidently.presets import DataDriftPreset

    definition = evidently.DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = evidently.Report(metrics or [DataDriftPreset()]).run(
            evidently.Dataset.from_pandas(cur, data_definition=definition),
            evidently.Dataset.from_pandas(ref, data_definition=definition),
        )
        found = {}
        for m in snapshot.dict()["metrics"]:
            config = m["config"]
            if "column" in config:
                found[config["column"]] = (config["method"], float(m["value"]), config["threshold"])
    return found


def _frames(rng, n_ref, n_cur):
    ref = pd.DataFrame(
        {
            "a": rng.normal(0, 1, n_ref),
            "b": rng.gamma(2, 2, n_ref),
            "c": rng.choice(list("xyzw"), n_ref, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    cur = pd.DataFrame(
        {
            "a": rng.normal(0.5, 1, n_cur),
            "b": rng.gamma(2, 2, n_cur),
            "c": rng.choice(list("xyzw"), n_cur, p=[0.25, 0.25, 0.25, 0.25]),
        }
    )
    return ref, cur


def test_small_reference_matches_evidently_defaults():
    ref, cur = _frames(np.random.default_rng(3), 800, 500)
    theirs = _evidently_values(ref, cur, ["a", "b"], ["c"])
    ours = compute_drift(ref, cur, stats={"c": "chi2_gof"})
    for name in ("a", "b"):
        method, value, threshold = theirs[name]
        assert method == "K-S p_value"
        f = ours.feature(name)
        assert f.stat == "ks"
        assert f.pvalue == pytest.approx(value, rel=TOL, abs=1e-300)
        assert f.threshold == threshold
        assert (f.verdict == "drift") == (value < threshold)
    method, value, _ = theirs["c"]
    assert method == "chi-square p_value"
    assert ours.feature("c").pvalue == pytest.approx(value, rel=TOL)


def test_large_reference_matches_evidently_defaults():
    ref, cur = _frames(np.random.default_rng(4), 3000, 1000)
    theirs = _evidently_values(ref, cur, ["a", "b"], ["c"])
    ours = compute_drift(ref, cur, binning="evidently")
    for name in ("a", "b"):
        method, value, threshold = theirs[name]
        assert method == "Wasserstein distance (normed)"
        f = ours.feature(name)
        assert f.stat == "wasserstein_norm"
        assert f.value == pytest.approx(value, rel=TOL)
        assert f.threshold == threshold
    method, value, threshold = theirs["c"]
    assert method == "Jensen-Shannon distance"
    assert ours.feature("c").value == pytest.approx(value, rel=TOL)
    for n in "abc":
        assert (ours.feature(n).verdict == "drift") == (theirs[n][1] >= theirs[n][2])


@pytest.mark.parametrize("stat", ["psi", "jensenshannon"])
def test_evidently_binning_matches_evidently_stattests(stat):
    from evidently.metrics import ValueDrift

    ref, cur = _frames(np.random.default_rng(5), 2000, 700)
    metrics = [ValueDrift(column=c, method=stat) for c in ("a", "b", "c")]
    theirs = _evidently_values(ref, cur, ["a", "b"], ["c"], metrics)
    ours = compute_drift(ref, cur, stats=stat, binning="evidently")
    for name in ("a", "b", "c"):
        assert ours.feature(name).value == pytest.approx(theirs[name][1], rel=TOL)
