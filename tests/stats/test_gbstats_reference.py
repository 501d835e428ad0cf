"""driftline.stats equals GrowthBook's gbstats (the frequentist engine) on the committed fixture to 1e-9.

The fixture is written by scripts/gbstats_reference.py in its own virtualenv (tests/README.md says how): the arms'
running sums of seeded data and gbstats' fixed-horizon and sequential results on them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from driftline.stats import Comparison, Interval, Sample, fixed_horizon, sample_ratio, sequential

FIXTURE = Path(__file__).parents[1] / "fixtures" / "gbstats_reference.json"
REFERENCE = json.loads(FIXTURE.read_text())
CASES = {case["name"]: case for case in REFERENCE["cases"]}
# gbstats computes a p-value as 1 - cdf, which keeps ~1e-16 absolute: a tiny p-value matches to that, not 1e-9.
REL, ABS = 1e-9, 1e-14


def _sample(kind: str, arm: dict[str, float]) -> Sample:
    if kind == "proportion":
        return Sample.proportion(int(arm["n"]), int(arm["sum"]))
    return Sample.of_sums(int(arm["n"]), arm["sum"], arm["sum_squares"])


def _compare(case: dict, engine: str) -> Comparison:
    control, treatment = _sample(case["kind"], case["control"]), _sample(case["kind"], case["treatment"])
    if engine == "sequential":
        return sequential(control, treatment, case["confidence"], case["tuning"])
    return fixed_horizon(control, treatment, case["confidence"])


def _close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=ABS)


def _equal(interval: Interval, reference: dict[str, float]) -> bool:
    return all(_close(getattr(interval, k), reference[k]) for k in ("estimate", "lower", "upper"))


def test_fixture_covers_the_cases_the_brief_names():
    assert REFERENCE["gbstats"] == "0.8.0"
    kinds = {c["kind"] for c in CASES.values()}
    assert kinds == {"proportion", "mean", "revenue"}
    assert {c["confidence"] for c in CASES.values()} == {0.95, 0.9}
    ns = [min(c["control"]["n"], c["treatment"]["n"]) for c in CASES.values()]
    assert min(ns) < 10
    assert max(ns) >= 10_000
    assert any(c["control"]["n"] != c["treatment"]["n"] for c in CASES.values())
    assert any(c["tuning"] != 5000 for c in CASES.values())
    assert any(c["gbstats"]["sequential_absolute"]["p_value"] < 1e-6 for c in CASES.values())


@pytest.mark.parametrize("engine", ["sequential", "fixed"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_equals_gbstats(name, engine):
    case = CASES[name]
    result = _compare(case, engine)
    absolute, relative = case["gbstats"][f"{engine}_absolute"], case["gbstats"][f"{engine}_relative"]
    assert _equal(result.absolute, absolute), (result.absolute, absolute)
    assert result.relative is not None
    assert _equal(result.relative, relative), (result.relative, relative)
    # gbstats' p-value is the one of the difference type it was asked for; ours is the absolute difference's.
    assert _close(result.p_value, absolute["p_value"]), (result.p_value, absolute["p_value"])


def test_the_comparison_can_fail():
    # A tuning parameter 0.1% off moves every sequential bound by far more than the tolerance, and a confidence
    # off in its fourth digit moves the fixed ones: the comparison above discriminates.
    for case in CASES.values():
        reference = case["gbstats"]["sequential_absolute"]
        control, treatment = _sample(case["kind"], case["control"]), _sample(case["kind"], case["treatment"])
        retuned = sequential(control, treatment, case["confidence"], case["tuning"] * 1.001).absolute
        assert not _equal(retuned, reference)
        fixed = fixed_horizon(control, treatment, case["confidence"] + 1e-4).absolute
        assert not _equal(fixed, case["gbstats"]["fixed_absolute"])


@pytest.mark.parametrize("case", REFERENCE["srm"], ids=lambda c: c["name"])
def test_srm_equals_gbstats_check_srm(case):
    result = sample_ratio(case["observed"], case["weights"])
    assert _close(result.p_value, case["p_value"]), (result.p_value, case["p_value"])
    assert result.flagged == (case["p_value"] < 0.001)
