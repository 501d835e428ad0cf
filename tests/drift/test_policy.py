"""Statistic/threshold choice and verdicts against docs/drift.md "Verdicts" (Evidently, alibi-detect)."""

import math

import pytest

from driftline.drift.features import Column, Schema
from driftline.drift.policy import (
    DriftPolicy,
    dataset_verdict,
    decide,
    fdr_threshold,
    policy_from,
    resolve,
)
from driftline.errors import DriftInputError

SCHEMA = Schema(
    [
        Column("num", "numeric", "numeric", None, 50),
        Column("lowcard", "categorical", "numeric", None, 4),
        Column("cat", "categorical", "string", ["a", "b", "c"], 3),
        Column("flag", "categorical", "bool", None, 2),
    ]
)


def stats_of(n_ref, policy=None):
    return [(r.stat, r.threshold) for r in resolve(SCHEMA, n_ref, policy or DriftPolicy())]


@pytest.mark.parametrize("n_ref", [10, 1000])
def test_small_reference_uses_evidently_tests(n_ref):
    assert stats_of(n_ref) == [("ks", 0.05), ("chi2", 0.05), ("chi2", 0.05), ("fisher_exact", 0.05)]


@pytest.mark.parametrize("n_ref", [1001, 10**6])
def test_large_reference_uses_evidently_distances(n_ref):
    assert stats_of(n_ref) == [
        ("wasserstein_norm", 0.1),
        ("jensenshannon", 0.1),
        ("jensenshannon", 0.1),
        ("jensenshannon", 0.1),
    ]


def test_binary_falls_back_to_chi2():
    rule = resolve(SCHEMA, 100, DriftPolicy())[3]
    assert rule.fallback == "chi2"


def test_significance_preset_is_bonferroni():
    rules = resolve(SCHEMA, 5000, DriftPolicy(preset="significance"))
    assert [r.stat for r in rules] == ["ks", "chi2", "chi2", "chi2"]
    assert all(r.threshold == pytest.approx(0.05 / 4) for r in rules)


def test_global_stat_applies_only_where_it_can():
    rules = resolve(SCHEMA, 5000, DriftPolicy(stat="psi"))
    assert [r.stat for r in rules] == ["psi"] * 4
    rules = resolve(SCHEMA, 5000, DriftPolicy(stat="ks"))
    assert [r.stat for r in rules] == ["ks", "jensenshannon", "jensenshannon", "jensenshannon"]


def test_per_feature_overrides_win():
    policy = DriftPolicy(stat="psi", threshold=0.2, stats={"num": "kl"}, thresholds={"cat": 0.3})
    assert stats_of(5000, policy) == [("kl", 0.2), ("psi", 0.2), ("psi", 0.3), ("psi", 0.2)]


def test_bad_overrides_name_the_feature():
    with pytest.raises(DriftInputError, match="nope"):
        resolve(SCHEMA, 10, DriftPolicy(stats={"nope": "ks"}))
    with pytest.raises(DriftInputError, match="'cat'"):
        resolve(SCHEMA, 10, DriftPolicy(stats={"cat": "ks"}))
    with pytest.raises(DriftInputError, match="unknown statistic"):
        DriftPolicy(stat="t-test")
    with pytest.raises(DriftInputError, match="no default threshold"):
        resolve(SCHEMA, 10, DriftPolicy(stat="wasserstein"))
    assert stats_of(10, DriftPolicy(stat="wasserstein", thresholds={"num": 2.0}))[0] == ("wasserstein", 2.0)


def test_thresholds_out_of_range_are_refused():
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(DriftInputError, match="must be a finite number >= 0"):
            DriftPolicy(threshold=bad)
        with pytest.raises(DriftInputError, match="threshold of 'num' must be a finite number >= 0"):
            DriftPolicy(thresholds={"num": bad})
    # One threshold for every feature: the p-value tests (chi2 on 'lowcard' here) need it in (0, 1).
    with pytest.raises(DriftInputError, match=r"threshold 2 for feature 'lowcard' .*chi2.* must be in \(0, 1\)"):
        resolve(SCHEMA, 10, DriftPolicy(stat="wasserstein", threshold=2.0))
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(DriftInputError, match="must be in"):
            resolve(SCHEMA, 10, DriftPolicy(thresholds={"flag": bad}))
    assert stats_of(10, DriftPolicy(thresholds={"flag": 0.01}))[3] == ("fisher_exact", 0.01)
    assert stats_of(2000, DriftPolicy(threshold=0.0))[0] == ("wasserstein_norm", 0.0)
    with pytest.raises(DriftInputError, match="'ks' applies to none of the features"):
        resolve(Schema([SCHEMA.columns[2]]), 10, DriftPolicy(stat="ks"))


def test_verdicts_distance_and_pvalue_rules():
    rules = resolve(SCHEMA, 10, DriftPolicy(stats={"num": "psi"}))
    thresholds, verdicts = decide(rules, [0.1, 3.0, math.nan, 1.0], [math.nan, 0.049, 0.5, 0.05], DriftPolicy())
    # psi >= 0.1 drifts (equality included); p < 0.05 drifts (0.05 does not); NaN -> insufficient_data.
    assert verdicts == ["drift", "drift", "ok", "ok"]
    assert thresholds == [0.1, 0.05, 0.05, 0.05]
    _, verdicts = decide(rules, [0.09, 1.0, 1.0, 1.0], [math.nan, math.nan, 0.2, 0.2], DriftPolicy())
    assert verdicts == ["ok", "insufficient_data", "ok", "ok"]


def test_fdr_matches_benjamini_hochberg():
    # alibi-detect's rule: largest q*i/n with p_(i) < q*i/n.
    assert fdr_threshold([0.02, 0.03, 0.9], 0.05) == pytest.approx(0.05 * 2 / 3)
    assert fdr_threshold([0.001, 0.04], 0.05) == pytest.approx(0.05)
    assert fdr_threshold([0.5, 0.9], 0.05) == pytest.approx(0.025)
    policy = DriftPolicy(preset="significance", correction="fdr")
    rules = resolve(SCHEMA, 10, policy)
    assert all(r.threshold is None for r in rules)
    thresholds, verdicts = decide(rules, [1.0] * 4, [0.02, 0.03, 0.9, 0.0333], policy)
    assert verdicts == ["drift", "drift", "ok", "drift"]
    assert thresholds[0] == pytest.approx(0.05 * 3 / 4)


def test_dataset_share():
    assert dataset_verdict(["drift", "ok"], 0.5) == ("drift", 0.5)
    assert dataset_verdict(["drift", "ok", "ok"], 0.5) == ("ok", pytest.approx(1 / 3))
    assert dataset_verdict(["drift", "insufficient_data", "ok", "ok"], 0.25)[0] == "drift"
    assert dataset_verdict(["insufficient_data"], 0.5) == ("insufficient_data", 0.0)


def test_policy_from_compact_arguments():
    p = policy_from("significance", "ks", 0.01, drift_share=0.3)
    assert (p.preset, p.stat, p.threshold, p.drift_share) == ("significance", "ks", 0.01, 0.3)
    p = policy_from("default", {"num": "psi"}, {"num": 0.2})
    assert p.stats == {"num": "psi"}
    assert p.thresholds == {"num": 0.2}
    with pytest.raises(DriftInputError):
        policy_from("nope")
