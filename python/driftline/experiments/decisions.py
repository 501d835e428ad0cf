"""Decisions on evidence: the spec's promotion rules judged on the report's numbers, and the guardrail breach that
stops an experiment.

Rules are judged on the anytime-valid confidence sequence (latency_p99: its distribution-free quantile bounds), so
judging them at every look keeps their error rate. A spec without rules is judged on one implied rule: the
primary metric is better.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec

from driftline.drift.html import fmt_number
from driftline.experiments.spec import Rule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.experiments.numbers import Bounds, MetricReport, Versus
    from driftline.experiments.spec import ExperimentSpec

__all__ = ["RuleResult", "breached", "judge", "rules_of"]


class RuleResult(msgspec.Struct, frozen=True):
    """One rule for one treatment arm: what it requires, whether it holds now, and the numbers that say so."""

    text: str
    passed: bool
    evidence: str


def rules_of(spec: ExperimentSpec) -> list[Rule]:
    """The spec's rules; without any, the implied one: the primary metric is better."""
    return list(spec.rules) or [Rule(metric=spec.primary, require="better")]


def _interval(b: Bounds, percent: bool = False) -> str:
    if percent:
        return f"{b.estimate:+.2%} [{_pct(b.lower)}, {_pct(b.upper)}]"
    return f"{fmt_number(b.estimate)} [{fmt_number(b.lower)}, {fmt_number(b.upper)}]"


def _pct(x: float) -> str:
    return f"{x:+.2%}" if math.isfinite(x) else fmt_number(x)


def _text(spec: ExperimentSpec, rule: Rule, arm: str, several: bool) -> str:
    """The rule in words, e.g. ``conversion: treatment better than control (95% lower bound > 0)``."""
    metric = spec.metric(rule.metric)
    who = f"{arm} " if several else ""
    if rule.require == "min_sample":
        where = f"{spec.control.name} and {arm}" if several else "every arm"
        return f"{rule.metric}: at least {rule.n:,} units in {where}"
    up = metric.direction == "increase"
    bound = "lower" if up else "upper"
    what = "relative difference" if rule.relative else "difference"
    margin = f"{rule.margin:.2%}" if rule.relative else fmt_number(rule.margin)
    level = f"{spec.confidence:.1%}".replace(".0%", "%")
    if rule.require == "better":
        limit = "0" if rule.margin == 0 else margin if up else f"-{margin}"
        cmp = ">" if up else "<"
        return (
            f"{rule.metric}: {who}better than {spec.control.name} ({level} {bound} bound of the {what} {cmp} {limit})"
        )
    limit = f"> -{margin}" if up else f"< {margin}"
    return (
        f"{rule.metric}: {who}not worse than {spec.control.name} by more than {margin} "
        f"({level} {bound} bound of the {what} {limit})"
    )


def _check(spec: ExperimentSpec, rule: Rule, metric: MetricReport, versus: Versus) -> tuple[bool, str]:
    arms = {a.arm: a.n for a in metric.arms}
    pair = {spec.control.name: arms.get(spec.control.name, 0), versus.arm: arms.get(versus.arm, 0)}
    if versus.paired:
        pair = {"pairs": arms.get(versus.arm, 0)}
    if rule.require == "min_sample":
        short = {a: n for a, n in pair.items() if n < rule.n}
        if short:
            return False, "; ".join(f"{a}: needs {rule.n:,}, has {n:,}" for a, n in short.items())
        return True, ", ".join(f"{a}: {n:,}" for a, n in pair.items())
    short = {a: n for a, n in pair.items() if n < spec.min_sample}
    if short:
        return False, "; ".join(f"{a}: needs {spec.min_sample:,}, has {n:,}" for a, n in short.items())
    b = versus.relative if rule.relative else versus.absolute
    if b is None:
        return False, f"no relative difference: {spec.control.name}'s mean is 0"
    up = spec.metric(rule.metric).direction == "increase"
    if rule.require == "better":
        passed = b.lower > rule.margin if up else b.upper < -rule.margin
    else:
        passed = b.lower > -rule.margin if up else b.upper < rule.margin
    name = "relative difference" if rule.relative else "difference"
    return passed, f"{name} {_interval(b, rule.relative)} ({versus.method})"


def judge(spec: ExperimentSpec, metrics: Sequence[MetricReport]) -> list[RuleResult]:
    """Each rule of the spec (:func:`rules_of`) for each treatment arm, judged on ``metrics``.

    A ``better`` / ``not_worse`` rule on a metric with fewer than ``spec.min_sample`` units in an arm fails with
    "needs N, has M"; ``better`` with a margin requires the bound past that margin instead of past 0.
    """
    by_name = {m.name: m for m in metrics}
    results = []
    for rule in rules_of(spec):
        metric = by_name.get(rule.metric)
        if metric is None:
            results.append(RuleResult(_text(spec, rule, "treatment", False), False, "the report has no such metric"))
            continue
        several = len(metric.comparisons) > 1
        for versus in metric.comparisons:
            passed, evidence = _check(spec, rule, metric, versus)
            results.append(RuleResult(_text(spec, rule, versus.arm, several), passed, evidence))
    return results


def breached(spec: ExperimentSpec, metrics: Sequence[MetricReport]) -> list[str]:
    """The guardrail metrics a treatment is significantly worse on (its interval wholly on the bad side of 0,
    past ``min_sample``): what stops the experiment when ``guardrail_stop`` is on."""
    return [m.name for m in metrics if m.name in spec.guardrails and any(v.verdict == "worse" for v in m.comparisons)]
