"""An experiment's numbers per metric: each arm's value with its interval, and each treatment arm against the
control (sequential and fixed-horizon intervals of the difference, its p-value, a verdict, the interval over time).

Formulas are driftline.stats' (docs/statistics.md); what a unit and a value are per metric kind is in
docs/experiments.md. Everything here is pure: it reads :class:`~driftline.experiments.data.ExperimentData`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import TYPE_CHECKING, Final, Literal

import msgspec
import numpy as np

from driftline.experiments.data import Units
from driftline.experiments.spec import MetricKind  # noqa: TC001 - msgspec needs it at run time
from driftline.quality.intervals import wilson
from driftline.stats.paired import mcnemar, paired_fixed, paired_sequential
from driftline.stats.quantiles import quantile_interval
from driftline.stats.samples import Interval, Sample
from driftline.stats.twosample import Comparison, fixed_horizon, sequential
from driftline.store.traffic import LATENCY_BOUNDS, TrafficTotals

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from driftline.experiments.data import ExperimentData, Pairs
    from driftline.experiments.spec import ExperimentSpec, Metric
    from driftline.quality.intervals import Estimate

__all__ = ["LOOKS", "ArmSummary", "Bounds", "Look", "MetricReport", "Verdict", "Versus", "measure_metric"]

#: The most looks a comparison's history lists (evenly spaced over the experiment's window).
LOOKS: Final = 20
#: The quantile latency_p99 compares.
P99: Final = 0.99
Verdict = Literal["better", "worse", "inconclusive", "insufficient"]
Role = Literal["primary", "guardrail", "secondary"]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


class Bounds(msgspec.Struct, frozen=True):
    """A value and its interval (``lower``/``upper`` may be infinite: too little data to bound it)."""

    estimate: float
    lower: float
    upper: float


class ArmSummary(msgspec.Struct, frozen=True):
    """One arm of one metric: its units and mean (latency_p99: the p99 in ms) with a fixed-horizon interval."""

    arm: str
    version: int
    n: int
    mean: float
    interval: Bounds


class Look(msgspec.Struct, frozen=True):
    """The sequential interval of the difference as it stood at ``at``, over the ``n`` units seen by then."""

    at: datetime
    n: int
    estimate: float
    lower: float
    upper: float


class Versus(msgspec.Struct, frozen=True):
    """One treatment arm against the control: treatment minus control.

    ``absolute`` and ``relative`` are the anytime-valid confidence sequence (latency_p99: the distribution-free
    quantile bounds); ``fixed_*`` the fixed-horizon interval beside it. ``p_value`` is the sequential test's (a
    shadow accuracy: McNemar's; None for latency_p99), ``adjusted_p_value`` after the spec's correction across the
    metrics. ``method`` says in words how it was computed.
    """

    arm: str
    absolute: Bounds
    relative: Bounds | None
    fixed_absolute: Bounds
    fixed_relative: Bounds | None
    p_value: float | None
    adjusted_p_value: float | None
    paired: bool
    verdict: Verdict
    method: str
    history: list[Look]


class MetricReport(msgspec.Struct, frozen=True):
    """One metric: what it is, its arms (the control first) and each treatment's comparison with the control."""

    name: str
    kind: MetricKind
    direction: Literal["increase", "decrease"]
    role: Role
    unit: str
    arms: list[ArmSummary]
    comparisons: list[Versus]


def _bounds(i: Interval) -> Bounds:
    return Bounds(float(i.estimate), float(i.lower), float(i.upper))


def verdict(direction: str, b: Bounds, n: int, min_sample: int) -> Verdict:
    """better / worse when the interval lies wholly on one side of 0 (read by ``direction``), once every arm has
    ``min_sample`` units; else inconclusive."""
    if n < min_sample:
        return "insufficient"
    good, bad = (b.lower > 0, b.upper < 0) if direction == "increase" else (b.upper < 0, b.lower > 0)
    return "better" if good else "worse" if bad else "inconclusive"


def _looks(start: datetime, end: datetime) -> list[int]:
    """The µs since the epoch of up to LOOKS evenly spaced looks, the last at ``end``."""
    lo, hi = (start - _EPOCH) // _US, (end - _EPOCH) // _US
    if hi <= lo:
        return [hi]
    return sorted({lo + (hi - lo) * k // LOOKS for k in range(1, LOOKS + 1)})


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _role(spec: ExperimentSpec, name: str) -> Role:
    return "primary" if name == spec.primary else "guardrail" if name in spec.guardrails else "secondary"


def share(n: int, successes: int) -> Sample:
    """successes / n with gbstats' variance p(1 - p), except that an arm at 0% or 100% gets the variance of
    (successes + 1/2) / (n + 1): gbstats leaves the interval unbounded when an arm's variance is 0, and a
    challenger's errors must still show against a control that had none (docs/experiments.md)."""
    s = Sample.proportion(n, successes)
    if n >= 2 and s.variance == 0:
        p = (successes + 0.5) / (n + 1)
        return Sample(n, s.mean, p * (1.0 - p))
    return s


def _sample(values: NDArray[np.float64], is_proportion: bool) -> Sample:
    if is_proportion:
        return share(len(values), int(values.sum()))
    return Sample.of(values)


def _prefixes(units: Units, is_proportion: bool, cuts: Sequence[int]) -> list[Sample]:
    """At each cut (µs), the sample of the units first seen at or before it; the units sorted by time once."""
    order = np.argsort(units.at, kind="stable")
    at, values = units.at[order], units.values[order]
    out = []
    for cut in cuts:
        k = int(np.searchsorted(at, cut, side="right"))
        head = values[:k]
        if is_proportion:
            out.append(share(k, int(head.sum())))
        else:
            out.append(Sample.of_sums(k, float(head.sum()), float((head * head).sum())))
    return out


def _arm(name: str, version: int, values: NDArray[np.float64], proportion: bool, confidence: float) -> ArmSummary:
    n = len(values)
    if proportion:
        e = wilson(int(values.sum()), n, confidence)
        return ArmSummary(name, version, n, e.value, _estimate(e))
    s = Sample.of(values)
    half = NormalDist().inv_cdf(0.5 + confidence / 2.0) * math.sqrt(s.variance / n) if n >= 2 else math.inf
    mean = s.mean if n else math.nan
    return ArmSummary(name, version, n, mean, Bounds(mean, mean - half, mean + half))


def _versus(
    arm: str, seq: Comparison, fixed: Comparison, p: float | None, paired: bool, v: Verdict, method: str, h: list[Look]
) -> Versus:
    rel = None if seq.relative is None else _bounds(seq.relative)
    fixed_rel = None if fixed.relative is None else _bounds(fixed.relative)
    return Versus(arm, _bounds(seq.absolute), rel, _bounds(fixed.absolute), fixed_rel, p, None, paired, v, method, h)


def _unpaired(spec: ExperimentSpec, metric: Metric, data: ExperimentData, proportion: bool) -> MetricReport:
    """kpi and quality outside a shadow: the arms' independent samples of one value per unit."""
    per_arm = data.units.get(metric.name, {})
    control = spec.control.name
    empty = _empty_units()
    arms = [
        _arm(a.name, data.versions[a.name], per_arm.get(a.name, empty).values, proportion, spec.confidence)
        for a in spec.arms
    ]
    c_units = per_arm.get(control, empty)
    c = _sample(c_units.values, proportion)
    looks = _looks(data.start, data.end)
    c_seen = _prefixes(c_units, proportion, looks)  # once, for every treatment
    comparisons = []
    for a in spec.arms[1:]:
        t_units = per_arm.get(a.name, empty)
        t = _sample(t_units.values, proportion)
        seq = sequential(c, t, spec.confidence)
        fixed = fixed_horizon(c, t, spec.confidence)
        history = []
        for cut, ci, ti in zip(looks, c_seen, _prefixes(t_units, proportion, looks), strict=True):
            if ci.n and ti.n:
                step = sequential(ci, ti, spec.confidence).absolute
                history.append(Look(_at(cut), ci.n + ti.n, step.estimate, step.lower, step.upper))
        v = verdict(metric.direction, _bounds(seq.absolute), min(c.n, t.n), spec.min_sample)
        comparisons.append(_versus(a.name, seq, fixed, seq.p_value, False, v, "confidence sequence", history))
    unit = "labeled row" if metric.kind == "quality" else data.unit
    return MetricReport(metric.name, metric.kind, metric.direction, _role(spec, metric.name), unit, arms, comparisons)


def _paired(spec: ExperimentSpec, metric: Metric, data: ExperimentData, pairs: Pairs) -> MetricReport:
    """A shadow: both arms answered the same rows (requests for latency); tests on the per-pair differences."""
    control, treatment = spec.arms[0].name, spec.arms[1].name
    proportion = metric.kind == "quality" and metric.quality == "accuracy"
    arms = [
        _arm(name, data.versions[name], values, proportion, spec.confidence)
        for name, values in ((control, pairs.control), (treatment, pairs.treatment))
    ]
    diffs = pairs.treatment - pairs.control
    d = Sample.of(diffs)
    seq, fixed = paired_sequential(d, spec.confidence), paired_fixed(d, spec.confidence)
    base = float(pairs.control.mean()) if len(pairs.control) else 0.0
    seq, fixed = _with_relative(seq, base), _with_relative(fixed, base)
    p: float | None = seq.p_value
    method = "paired confidence sequence"
    if proportion:
        b = int(((pairs.control == 1) & (pairs.treatment == 0)).sum())
        c = int(((pairs.control == 0) & (pairs.treatment == 1)).sum())
        p, method = mcnemar(b, c), "paired confidence sequence; p-value: McNemar"
    looks = _looks(data.start, data.end)
    history = []
    for cut, seen in zip(looks, _prefixes(Units(diffs, pairs.at), False, looks), strict=True):
        if seen.n:
            look = paired_sequential(seen, spec.confidence).absolute
            history.append(Look(_at(cut), seen.n, look.estimate, look.lower, look.upper))
    v = verdict(metric.direction, _bounds(seq.absolute), d.n, spec.min_sample)
    unit = "paired request" if metric.kind == "latency_p99" else "paired labeled row"
    comparison = _versus(treatment, seq, fixed, p, True, v, method, history)
    return MetricReport(metric.name, metric.kind, metric.direction, _role(spec, metric.name), unit, arms, [comparison])


def _with_relative(c: Comparison, base: float) -> Comparison:
    """A paired comparison's relative difference: its absolute interval over the control's mean on the same rows
    (that mean taken as known; docs/experiments.md)."""
    if base == 0 or not math.isfinite(base):
        return c
    a = c.absolute
    ends = sorted((a.lower / base, a.upper / base))
    return Comparison(c.absolute, Interval(a.estimate / base, ends[0], ends[1]), c.p_value)


def _error_rate(spec: ExperimentSpec, metric: Metric, data: ExperimentData) -> MetricReport:
    """Errors per routed request from the traffic counts (every request, not only captured ones)."""
    arms = []
    for a in spec.arms:
        totals = data.traffic.get(a.name)
        requests, errors = (0, 0) if totals is None else (totals.requests, totals.errors)
        e = wilson(errors, requests, spec.confidence)
        arms.append(ArmSummary(a.name, data.versions[a.name], requests, e.value, _estimate(e)))
    cumulative = _cumulative(data)

    def sample(totals: TrafficTotals | None) -> Sample:
        return share(0, 0) if totals is None else share(totals.requests, totals.errors)

    c = sample(data.traffic.get(spec.control.name))
    comparisons = []
    for a in spec.arms[1:]:
        t = sample(data.traffic.get(a.name))
        seq, fixed = sequential(c, t, spec.confidence), fixed_horizon(c, t, spec.confidence)
        history = []
        for at, upto in cumulative:
            ci, ti = sample(upto.get(spec.control.name)), sample(upto.get(a.name))
            if ci.n and ti.n:
                b = sequential(ci, ti, spec.confidence).absolute
                history.append(Look(at, ci.n + ti.n, b.estimate, b.lower, b.upper))
        v = verdict(metric.direction, _bounds(seq.absolute), min(c.n, t.n), spec.min_sample)
        comparisons.append(_versus(a.name, seq, fixed, seq.p_value, False, v, "confidence sequence", history))
    return MetricReport(
        metric.name, metric.kind, metric.direction, _role(spec, metric.name), "request", arms, comparisons
    )


def _estimate(e: Estimate) -> Bounds:
    return Bounds(e.value, e.lower, e.upper)


def _cumulative(data: ExperimentData) -> list[tuple[datetime, dict[str, TrafficTotals]]]:
    """The traffic series summed up to each step, at most LOOKS steps kept (the last always)."""
    running: dict[str, TrafficTotals] = {}
    out = []
    for at, step in data.series:
        for arm, t in step.items():
            before = running.get(arm)
            if before is None:
                running[arm] = t
            else:
                counts = [x + y for x, y in zip(before.latency_counts, t.latency_counts, strict=True)]
                running[arm] = TrafficTotals(before.requests + t.requests, before.errors + t.errors, counts)
        out.append((at, dict(running)))
    if len(out) > LOOKS:
        stride = math.ceil(len(out) / LOOKS)
        out = [x for i, x in enumerate(out) if (len(out) - 1 - i) % stride == 0]
    return out


def p99_ms(totals: TrafficTotals | None, confidence: float) -> tuple[int, Interval]:
    """An arm's answered requests and the distribution-free interval of their p99 latency, in ms."""
    counts = [0] * (len(LATENCY_BOUNDS) + 1) if totals is None else list(totals.latency_counts)
    n = sum(counts)
    if n == 0:
        return 0, Interval(math.nan, -math.inf, math.inf)
    i = quantile_interval(LATENCY_BOUNDS, counts, P99, confidence)
    return n, Interval(i.estimate * 1e3, i.lower * 1e3, i.upper * 1e3)


def latency_versus(c: Interval, t: Interval) -> tuple[Bounds, Bounds | None]:
    """The difference of two p99s, absolute and relative, with the conservative interval the two quantile
    intervals bound it by (each at 1 - alpha/2, so both hold together at the stated confidence)."""
    absolute = Bounds(t.estimate - c.estimate, t.lower - c.upper, t.upper - c.lower)
    if not c.lower > 0 or not math.isfinite(c.estimate):
        return absolute, None
    upper = t.upper / c.lower - 1 if math.isfinite(c.lower) else math.inf
    lower = t.lower / c.upper - 1 if math.isfinite(c.upper) else -1.0
    return absolute, Bounds(t.estimate / c.estimate - 1, lower, upper)


def _latency(spec: ExperimentSpec, metric: Metric, data: ExperimentData) -> MetricReport:
    """p99 latency of the answered routed requests, from the traffic histogram; a fixed-horizon comparison."""
    level = 1 - (1 - spec.confidence) / 2
    arms, p99s = [], {}
    for a in spec.arms:
        n, i = p99_ms(data.traffic.get(a.name), spec.confidence)
        p99s[a.name] = p99_ms(data.traffic.get(a.name), level)
        arms.append(ArmSummary(a.name, data.versions[a.name], n, i.estimate, _bounds(i)))
    cumulative = _cumulative(data)
    comparisons = []
    nc, c = p99s[spec.control.name]
    for a in spec.arms[1:]:
        nt, t = p99s[a.name]
        absolute, relative = latency_versus(c, t)
        history = []
        for at, totals in cumulative:
            (hc, ic), (ht, it) = p99_ms(totals.get(spec.control.name), level), p99_ms(totals.get(a.name), level)
            if hc and ht:
                b, _ = latency_versus(ic, it)
                history.append(Look(at, hc + ht, b.estimate, b.lower, b.upper))
        v = verdict(metric.direction, absolute, min(nc, nt), spec.min_sample)
        method = "distribution-free p99 intervals (fixed horizon), separated or not"
        comparisons.append(
            Versus(a.name, absolute, relative, absolute, relative, None, None, False, v, method, history)
        )
    unit = "answered request"
    return MetricReport(metric.name, metric.kind, metric.direction, _role(spec, metric.name), unit, arms, comparisons)


def _empty_units() -> Units:
    return Units(np.empty(0, np.float64), np.empty(0, np.int64))


def measure_metric(spec: ExperimentSpec, metric: Metric, data: ExperimentData) -> MetricReport:
    """The metric's report (adjusted p-values are set across the metrics by the caller)."""
    pairs = data.pairs.get(metric.name)
    if spec.design.kind == "shadow" and pairs is not None:
        return _paired(spec, metric, data, pairs)
    if metric.kind == "error_rate":
        return _error_rate(spec, metric, data)
    if metric.kind == "latency_p99":
        return _latency(spec, metric, data)
    proportion = metric.kind == "quality" and metric.quality == "accuracy"
    return _unpaired(spec, metric, data, proportion)


def metrics_of(spec: ExperimentSpec, data: ExperimentData) -> Sequence[MetricReport]:
    """Every metric of the spec, in its order."""
    return [measure_metric(spec, m, data) for m in spec.metrics]
