"""build_report on synthetic ExperimentData with known effects: a clear winner, an A/A, too few units, a guardrail
breach, a sample-ratio mismatch, paired shadow data (McNemar), latency p99 from traffic histograms, and the
correction across metrics."""

from __future__ import annotations

import math
from bisect import bisect_left
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from driftline.experiments.data import ExperimentData, Pairs, Units
from driftline.experiments.report import build_report
from driftline.experiments.spec import Arm, Design, Experiment, ExperimentSpec, Metric, Rule
from driftline.stats.samples import Sample
from driftline.stats.twosample import fixed_horizon, sequential
from driftline.store.traffic import LATENCY_BOUNDS, TrafficTotals

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
HOURS = 10
VERSIONS = {"control": 1, "treatment": 2}
CONVERSION = Metric(name="conversion", kind="kpi", direction="increase")
ERRORS = Metric(name="error_rate", kind="error_rate", direction="decrease")
LATENCY = Metric(name="latency", kind="latency_p99", direction="decrease")
ACCURACY = Metric(name="accuracy", kind="quality", direction="increase", quality="accuracy")


def spec_of(*metrics: Metric, design: Design | None = None, **kw: object) -> ExperimentSpec:
    return ExperimentSpec(
        name="exp",
        arms=[Arm("control", "1"), Arm("treatment", "2")],
        design=design or Design(canary=50),
        metrics=list(metrics),
        primary=metrics[0].name,
        **kw,  # type: ignore[arg-type]
    )


def experiment_of(spec: ExperimentSpec) -> Experiment:
    return Experiment(1, "m", spec, dict(VERSIONS), "running", T0, "tester")


def units_of(values: np.ndarray) -> Units:
    """Values first seen evenly over the experiment's hours."""
    n = len(values)
    at = (T0.timestamp() * 1e6 + np.arange(n) * (HOURS * 3600e6 / max(n, 1))).astype(np.int64)
    return Units(values.astype(np.float64), at)


def totals(requests: int, errors: int, latency_s: float | None = None) -> TrafficTotals:
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    if latency_s is not None:
        counts[bisect_left(LATENCY_BOUNDS, latency_s)] = requests - errors
    return TrafficTotals(requests, errors, counts)


def data_of(
    spec: ExperimentSpec,
    units: dict[str, dict[str, Units]] | None = None,
    pairs: dict[str, Pairs] | None = None,
    traffic: dict[str, TrafficTotals] | None = None,
    assignments: dict[str, int] | None = None,
) -> ExperimentData:
    traffic = traffic or {}
    # The traffic in ten equal steps, so the history has looks.
    series = []
    for k in range(1, 11):
        step = {
            arm: TrafficTotals(t.requests // 10, t.errors // 10, [c // 10 for c in t.latency_counts])
            for arm, t in traffic.items()
        }
        series.append((T0 + timedelta(hours=k), step))
    if assignments is None:
        assignments = {a: t.requests for a, t in traffic.items()} or {"control": 5000, "treatment": 5000}
    end = T0 + timedelta(hours=HOURS)
    return ExperimentData(T0, end, dict(VERSIONS), "request", assignments, units or {}, pairs or {}, traffic, series)


def conversions(p_control: float, p_treatment: float, n: int, seed: int = 7) -> dict[str, dict[str, Units]]:
    rng = np.random.default_rng(seed)
    return {
        "conversion": {
            "control": units_of((rng.random(n) < p_control).astype(float)),
            "treatment": units_of((rng.random(n) < p_treatment).astype(float)),
        }
    }


def report_of(spec: ExperimentSpec, data: ExperimentData):
    return build_report(experiment_of(spec), data, data.end)


def test_a_clear_winner_is_better_and_ready():
    spec = spec_of(CONVERSION)
    data = data_of(spec, conversions(0.10, 0.15, 5000))
    report = report_of(spec, data)
    (metric,) = report.metrics
    (versus,) = metric.comparisons
    assert metric.role == "primary"
    assert metric.unit == "request"
    assert [a.arm for a in metric.arms] == ["control", "treatment"]
    assert versus.verdict == "better"
    assert versus.absolute.lower > 0
    c = Sample.of(data.units["conversion"]["control"].values)
    t = Sample.of(data.units["conversion"]["treatment"].values)
    seq, fixed = sequential(c, t, 0.95), fixed_horizon(c, t, 0.95)
    assert versus.absolute.lower == pytest.approx(seq.absolute.lower, abs=1e-12)
    assert versus.fixed_absolute.upper == pytest.approx(fixed.absolute.upper, abs=1e-12)
    assert versus.relative is not None
    assert versus.relative.estimate == pytest.approx(t.mean / c.mean - 1)
    assert versus.p_value == pytest.approx(seq.p_value)
    assert versus.adjusted_p_value == pytest.approx(seq.p_value)
    # The confidence sequence is wider than the fixed-horizon interval on the same data.
    assert versus.absolute.upper - versus.absolute.lower > versus.fixed_absolute.upper - versus.fixed_absolute.lower
    # The history: at most 20 looks in time order, the last one the whole window's interval.
    assert 1 < len(versus.history) <= 20
    assert [k.at for k in versus.history] == sorted(k.at for k in versus.history)
    assert versus.history[-1].n == 10_000
    assert versus.history[-1].lower == pytest.approx(versus.absolute.lower)
    assert [r.passed for r in report.rules] == [True]
    assert report.ready
    assert report.breached == []
    assert report.sample_ratio is not None
    assert not report.sample_ratio.flagged


def test_an_a_a_experiment_is_inconclusive_and_not_ready():
    spec = spec_of(CONVERSION)
    report = report_of(spec, data_of(spec, conversions(0.10, 0.10, 5000, seed=3)))
    versus = report.metrics[0].comparisons[0]
    assert versus.verdict == "inconclusive"
    assert versus.absolute.lower < 0 < versus.absolute.upper
    assert not report.ready
    assert not report.rules[0].passed
    assert "difference" in report.rules[0].evidence


def test_too_few_units_is_insufficient_and_a_rule_says_how_many():
    spec = spec_of(CONVERSION, min_sample=100, rules=[Rule(metric="conversion", require="not_worse", margin=0.5)])
    report = report_of(spec, data_of(spec, conversions(0.1, 0.9, 40)))
    assert report.metrics[0].comparisons[0].verdict == "insufficient"
    (rule,) = report.rules
    assert not rule.passed
    assert "needs 100, has 40" in rule.evidence
    assert not report.ready


def test_a_guardrail_significantly_worse_is_breached():
    spec = spec_of(CONVERSION, ERRORS, guardrails=["error_rate"], guardrail_stop=True)
    traffic = {"control": totals(10_000, 100, 0.01), "treatment": totals(10_000, 300, 0.01)}
    report = report_of(spec, data_of(spec, conversions(0.1, 0.15, 5000), traffic=traffic))
    errors = next(m for m in report.metrics if m.name == "error_rate")
    assert errors.role == "guardrail"
    assert errors.unit == "request"
    assert [(a.n, a.mean) for a in errors.arms] == [(10_000, 0.01), (10_000, 0.03)]
    versus = errors.comparisons[0]
    assert versus.verdict == "worse"
    assert versus.absolute.lower > 0
    assert versus.history
    assert versus.history[-1].n == 20_000
    assert report.breached == ["error_rate"]
    assert not report.ready
    assert report.rules[0].passed  # the primary is better: only the breach holds promotion back
    # The same numbers on a secondary metric are no breach.
    plain = spec_of(CONVERSION, ERRORS)
    assert report_of(plain, data_of(plain, conversions(0.1, 0.15, 5000), traffic=traffic)).breached == []


@pytest.mark.parametrize(("control", "flagged"), [(10_400, True), (10_040, False)])
def test_the_sample_ratio_of_a_52_48_split_at_20000_is_flagged(control, flagged):
    spec = spec_of(CONVERSION)
    data = data_of(spec, conversions(0.1, 0.15, 5000), assignments={"control": control, "treatment": 20_000 - control})
    report = report_of(spec, data)
    srm = report.sample_ratio
    assert srm is not None
    assert srm.flagged is flagged
    assert srm.expected == {"control": 10_000.0, "treatment": 10_000.0}
    assert srm.observed == {"control": control, "treatment": 20_000 - control}
    assert report.ready is not flagged  # the rules pass either way


def test_the_sample_ratio_reads_a_canary_and_split_weights():
    spec = spec_of(CONVERSION, design=Design(canary=30))
    srm = report_of(spec, data_of(spec, assignments={"control": 7_000, "treatment": 3_000})).sample_ratio
    assert srm is not None
    assert srm.expected == {"control": 7_000.0, "treatment": 3_000.0}
    assert not srm.flagged
    split = spec_of(CONVERSION, design=Design(split={"control": 80, "treatment": 20}, parameter="user"))
    srm = report_of(split, data_of(split, assignments={"control": 5_000, "treatment": 5_000})).sample_ratio
    assert srm is not None
    assert srm.flagged


def _shadow_pairs(n: int, seed: int = 11) -> Pairs:
    rng = np.random.default_rng(seed)
    control = (rng.random(n) < 0.80).astype(float)
    treatment = control.copy()
    flip = rng.random(n)
    treatment[(control == 0) & (flip < 0.40)] = 1  # the challenger fixes 40% of the champion's mistakes
    treatment[(control == 1) & (flip < 0.02)] = 0  # and breaks 2% of its right answers
    at = (T0.timestamp() * 1e6 + np.arange(n) * 1e6).astype(np.int64)
    return Pairs(control, treatment, at)


def test_a_shadow_compares_paired_rows_with_mcnemar():
    spec = spec_of(ACCURACY, design=Design(shadow=100))
    pairs = _shadow_pairs(800)
    report = report_of(spec, data_of(spec, pairs={"accuracy": pairs}))
    assert report.sample_ratio is None  # both versions answer every request: no ratio to check
    (metric,) = report.metrics
    (versus,) = metric.comparisons
    assert versus.paired
    assert metric.unit == "paired labeled row"
    b = int(((pairs.control == 1) & (pairs.treatment == 0)).sum())
    c = int(((pairs.control == 0) & (pairs.treatment == 1)).sum())
    expected = sm_mcnemar([[0, b], [c, 0]], exact=False, correction=True).pvalue
    assert versus.p_value == pytest.approx(expected, rel=1e-12)
    assert versus.absolute.estimate == pytest.approx(pairs.treatment.mean() - pairs.control.mean())
    assert versus.verdict == "better"
    assert report.ready
    assert [a.n for a in metric.arms] == [800, 800]
    assert metric.arms[0].mean == pytest.approx(pairs.control.mean())
    # Paired, the same data needs far fewer rows than two independent samples would.
    unpaired = sequential(Sample.of(pairs.control), Sample.of(pairs.treatment), 0.95).absolute
    assert versus.absolute.upper - versus.absolute.lower < unpaired.upper - unpaired.lower


def test_shadow_latency_is_a_paired_difference_of_captured_latencies():
    spec = spec_of(LATENCY, design=Design(shadow=50))
    rng = np.random.default_rng(5)
    control = rng.gamma(4.0, 2.0, 500)
    pairs = Pairs(control, control * 1.5 + rng.normal(0, 0.1, 500), np.arange(500, dtype=np.int64) + 10**15)
    (metric,) = report_of(spec, data_of(spec, pairs={"latency": pairs})).metrics
    versus = metric.comparisons[0]
    assert versus.paired
    assert versus.verdict == "worse"
    assert metric.unit == "paired request"
    assert versus.relative is not None
    assert versus.relative.estimate == pytest.approx(0.5, abs=0.02)


def test_latency_p99_compares_the_quantile_intervals():
    spec = spec_of(CONVERSION, LATENCY, guardrails=["latency"])
    traffic = {"control": totals(20_000, 0, 0.010), "treatment": totals(20_000, 0, 0.020)}
    report = report_of(spec, data_of(spec, conversions(0.1, 0.15, 5000), traffic=traffic))
    latency = next(m for m in report.metrics if m.name == "latency")
    control, treatment = latency.arms
    assert control.mean == pytest.approx(LATENCY_BOUNDS[bisect_left(LATENCY_BOUNDS, 0.010)] * 1e3)
    assert treatment.mean > 1.9 * control.mean
    versus = latency.comparisons[0]
    assert versus.p_value is None
    assert versus.adjusted_p_value is None
    assert not versus.paired
    assert versus.verdict == "worse"
    assert versus.relative is not None
    assert versus.relative.lower > 0.8
    assert report.breached == ["latency"]
    # Equal latencies: the quantile intervals overlap, nothing to conclude.
    same = {"control": totals(20_000, 0, 0.010), "treatment": totals(20_000, 0, 0.010)}
    latency = report_of(spec, data_of(spec, conversions(0.1, 0.15, 5000), traffic=same)).metrics[1]
    assert latency.comparisons[0].verdict == "inconclusive"


def test_an_arm_without_traffic_has_unbounded_latency():
    spec = spec_of(LATENCY)
    report = report_of(spec, data_of(spec, traffic={"control": totals(500, 0, 0.01)}))
    versus = report.metrics[0].comparisons[0]
    assert versus.verdict == "insufficient"
    assert math.isinf(versus.absolute.upper)
    assert b"null" in msgspec.json.encode(report)  # infinite bounds are JSON null


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_p_values_are_adjusted_across_the_metrics(method):
    revenue = Metric(name="revenue", kind="kpi", direction="increase")
    spec = spec_of(CONVERSION, revenue, ERRORS, correction=method)
    rng = np.random.default_rng(1)
    units = conversions(0.10, 0.12, 3000)
    units["revenue"] = {
        "control": units_of(rng.exponential(10, 3000)),
        "treatment": units_of(rng.exponential(10.4, 3000)),
    }
    traffic = {"control": totals(6000, 60, 0.01), "treatment": totals(6000, 75, 0.01)}
    report = report_of(spec, data_of(spec, units, traffic=traffic))
    raw = [m.comparisons[0].p_value for m in report.metrics]
    expected = multipletests(raw, method="holm" if method == "holm" else "fdr_bh")[1]
    assert [m.comparisons[0].adjusted_p_value for m in report.metrics] == pytest.approx(list(expected), rel=1e-12)


def test_a_split_with_three_arms_compares_each_treatment_with_the_control():
    spec = ExperimentSpec(
        name="abc",
        arms=[Arm("a", "1"), Arm("b", "2"), Arm("c", "3")],
        design=Design(split={"a": 34, "b": 33, "c": 33}, parameter="user"),
        metrics=[CONVERSION],
        primary="conversion",
    )
    rng = np.random.default_rng(2)
    units = {
        "conversion": {
            arm: units_of((rng.random(4000) < p).astype(float)) for arm, p in zip("abc", (0.1, 0.1, 0.14), strict=True)
        }
    }
    data = ExperimentData(
        T0,
        T0 + timedelta(hours=HOURS),
        {"a": 1, "b": 2, "c": 3},
        "entity",
        {"a": 4000, "b": 4000, "c": 4000},
        units,
        {},
        {},
        [],
    )
    report = build_report(Experiment(2, "m", spec, {"a": 1, "b": 2, "c": 3}, "running", T0, "t"), data, data.end)
    (metric,) = report.metrics
    assert metric.unit == "entity"
    assert [(v.arm, v.verdict) for v in metric.comparisons] == [("b", "inconclusive"), ("c", "better")]
    assert [(r.passed, "b " in r.text or "c " in r.text) for r in report.rules] == [(False, True), (True, True)]
    assert not report.ready
