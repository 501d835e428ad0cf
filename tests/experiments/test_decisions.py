"""judge() for every requirement kind (better, not_worse absolute and relative, min_sample), both directions, the
"needs N, has M" refusal, several treatments, the implied rule; breached() on guardrails only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftline.experiments.decisions import breached, judge
from driftline.experiments.numbers import ArmSummary, Bounds, MetricReport, Versus, verdict
from driftline.experiments.spec import Arm, Design, ExperimentSpec, Metric, Rule

AT = datetime(2026, 11, 2, tzinfo=UTC)


def spec_of(direction: str = "increase", rules: list[Rule] | None = None, **kw: object) -> ExperimentSpec:
    return ExperimentSpec(
        name="exp",
        arms=[Arm("control", "1"), Arm("treatment", "2")],
        design=Design(canary=50),
        metrics=[
            Metric(name="m", kind="kpi", direction=direction),  # type: ignore[arg-type]
            Metric(name="g", kind="error_rate", direction="decrease"),
        ],
        primary="m",
        guardrails=["g"],
        rules=rules or [],
        min_sample=100,
        **kw,  # type: ignore[arg-type]
    )


def metric_of(
    lower: float,
    upper: float,
    *,
    name: str = "m",
    n: tuple[int, int] = (1000, 1000),
    relative: tuple[float, float] | None = None,
    direction: str = "increase",
    arms: tuple[str, ...] = ("treatment",),
) -> MetricReport:
    absolute = Bounds((lower + upper) / 2, lower, upper)
    rel = None if relative is None else Bounds(sum(relative) / 2, *relative)
    comparisons = [
        Versus(arm, absolute, rel, absolute, rel, 0.5, 0.5, False, verdict(direction, absolute, min(n), 100), "cs", [])
        for arm in arms
    ]
    summaries = [ArmSummary("control", 1, n[0], 1.0, Bounds(1, 0, 2))]
    summaries += [ArmSummary(arm, 2 + i, n[1], 1.0, Bounds(1, 0, 2)) for i, arm in enumerate(arms)]
    return MetricReport(name, "kpi", direction, "primary", "request", summaries, comparisons)  # type: ignore[arg-type]


def one(spec: ExperimentSpec, metric: MetricReport) -> tuple[bool, str, str]:
    (result,) = judge(spec, [metric])
    return result.passed, result.text, result.evidence


@pytest.mark.parametrize(
    ("direction", "lower", "upper", "passed"),
    [
        ("increase", 0.01, 0.03, True),
        ("increase", -0.01, 0.03, False),
        ("decrease", -0.03, -0.01, True),
        ("decrease", -0.03, 0.01, False),
        ("decrease", 0.01, 0.03, False),
    ],
)
def test_better_needs_the_whole_interval_on_the_good_side(direction, lower, upper, passed):
    spec = spec_of(direction, [Rule(metric="m", require="better")])
    ok, text, evidence = one(spec, metric_of(lower, upper, direction=direction))
    assert ok is passed
    bound = "lower" if direction == "increase" else "upper"
    assert text == f"m: better than control (95% {bound} bound of the difference {'>' if bound == 'lower' else '<'} 0)"
    assert evidence.startswith("difference ")
    assert "cs" in evidence


def test_better_with_a_margin_needs_the_bound_past_it():
    spec = spec_of(rules=[Rule(metric="m", require="better", margin=0.02)])
    assert not one(spec, metric_of(0.01, 0.05))[0]
    assert one(spec, metric_of(0.021, 0.05))[0]


@pytest.mark.parametrize(
    ("direction", "lower", "upper", "passed"),
    [
        ("increase", -0.009, 0.02, True),
        ("increase", -0.011, 0.02, False),
        ("decrease", -0.02, 0.009, True),
        ("decrease", -0.02, 0.011, False),
    ],
)
def test_not_worse_with_an_absolute_margin(direction, lower, upper, passed):
    spec = spec_of(direction, [Rule(metric="m", require="not_worse", margin=0.01)])
    ok, text, _ = one(spec, metric_of(lower, upper, direction=direction))
    assert ok is passed
    assert "not worse than control by more than 0.0100" in text


@pytest.mark.parametrize(
    ("direction", "relative", "passed"),
    [
        ("decrease", (-0.05, 0.09), True),  # "p99 latency not worse by 10%"
        ("decrease", (-0.05, 0.11), False),
        ("increase", (-0.09, 0.05), True),
        ("increase", (-0.11, 0.05), False),
    ],
)
def test_not_worse_relative_to_the_control(direction, relative, passed):
    spec = spec_of(direction, [Rule(metric="m", require="not_worse", margin=0.10, relative=True)])
    # The absolute interval would say otherwise: only the relative one counts.
    ok, text, evidence = one(spec, metric_of(-5.0, 5.0, relative=relative, direction=direction))
    assert ok is passed
    assert "by more than 10.00%" in text
    assert "relative difference" in text
    assert evidence.startswith("relative difference ")
    assert "%" in evidence


def test_a_relative_rule_without_a_relative_difference_fails_saying_why():
    spec = spec_of(rules=[Rule(metric="m", require="not_worse", margin=0.1, relative=True)])
    ok, _, evidence = one(spec, metric_of(0.0, 0.1, relative=None))
    assert not ok
    assert "mean is 0" in evidence


def test_min_sample_counts_every_arm():
    spec = spec_of(rules=[Rule(metric="m", require="min_sample", n=500)])
    ok, text, evidence = one(spec, metric_of(0.0, 0.1, n=(800, 437)))
    assert not ok
    assert text == "m: at least 500 units in every arm"
    assert evidence == "treatment: needs 500, has 437"
    ok, _, evidence = one(spec, metric_of(0.0, 0.1, n=(800, 500)))
    assert ok
    assert evidence == "control: 800, treatment: 500"


@pytest.mark.parametrize("require", ["better", "not_worse"])
def test_a_rule_on_too_few_units_fails_with_needs_n_has_m(require):
    spec = spec_of(rules=[Rule(metric="m", require=require, margin=1.0)])  # type: ignore[arg-type]
    ok, _, evidence = one(spec, metric_of(0.5, 0.9, n=(37, 2000)))
    assert not ok
    assert evidence == "control: needs 100, has 37"


def test_without_rules_the_primary_must_be_better():
    spec = spec_of()
    (result,) = judge(spec, [metric_of(0.01, 0.02), metric_of(-1, 1, name="g", direction="decrease")])
    assert result.passed
    assert result.text.startswith("m: better than control")


def test_each_treatment_arm_is_judged_and_named():
    spec = ExperimentSpec(
        name="abc",
        arms=[Arm("control", "1"), Arm("b", "2"), Arm("c", "3")],
        design=Design(split={"control": 50, "b": 25, "c": 25}, header="x-user"),
        metrics=[Metric(name="m", kind="kpi", direction="increase")],
        primary="m",
        rules=[Rule(metric="m", require="better"), Rule(metric="m", require="min_sample", n=10)],
    )
    results = judge(spec, [metric_of(0.01, 0.02, arms=("b", "c"))])
    assert [r.text.split(" (")[0] for r in results] == [
        "m: b better than control",
        "m: c better than control",
        "m: at least 10 units in control and b",
        "m: at least 10 units in control and c",
    ]
    assert all(r.passed for r in results)


def test_a_rule_on_a_metric_the_report_lacks_fails():
    spec = spec_of(rules=[Rule(metric="g", require="not_worse", margin=0.01)])
    (result,) = judge(spec, [metric_of(0.0, 0.1)])
    assert not result.passed
    assert "no such metric" in result.evidence


def test_only_a_guardrail_significantly_worse_is_breached():
    spec = spec_of()
    worse_primary = metric_of(-0.3, -0.1)
    assert worse_primary.comparisons[0].verdict == "worse"
    guard_worse = metric_of(0.01, 0.03, name="g", direction="decrease")
    guard_unsure = metric_of(-0.01, 0.03, name="g", direction="decrease")
    guard_few = metric_of(0.01, 0.03, name="g", direction="decrease", n=(99, 1000))
    assert breached(spec, [worse_primary, guard_worse]) == ["g"]
    assert breached(spec, [worse_primary, guard_unsure]) == []
    assert guard_few.comparisons[0].verdict == "insufficient"
    assert breached(spec, [guard_few]) == []
