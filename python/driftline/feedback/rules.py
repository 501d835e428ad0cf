"""Judging one ``[[quality.alerts]]`` rule on one version's joined rows: a realized metric over its window of
labeled rows, or an ``estimated_*`` one (CBPE) over its window of captured rows, labeled or not."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec
import polars as pl

from driftline.feedback.join import Joined
from driftline.feedback.service import measure
from driftline.quality.intervals import DEFAULT_RESAMPLES, Estimate

if TYPE_CHECKING:
    from driftline.feedback.service import Baseline
    from driftline.repository.model_config import QualityConfig, QualityRule

__all__ = [
    "CONFIDENCE",
    "ESTIMATED",
    "Judgement",
    "RuleWindow",
    "State",
    "estimated",
    "judge",
    "overall_of",
    "realized",
]

State = Literal["ok", "firing", "insufficient"]
#: The prefix of the metrics CBPE estimates before labels arrive.
ESTIMATED = "estimated_"
# The level of every interval an event carries (the quality report's default).
CONFIDENCE = 0.95
_US = timedelta(microseconds=1)


class RuleWindow(msgspec.Struct, frozen=True):
    """The rows a rule was judged on: captured in ``[start, end)``, ``labeled`` of them with a label."""

    start: datetime
    end: datetime
    labeled: int
    captured: int


@dataclass(frozen=True, slots=True)
class Judgement:
    """One evaluation of a rule: its verdict, and the metric and window it was judged on (None: none had rows)."""

    state: State
    estimate: Estimate | None
    window: RuleWindow | None


def overall_of(quality: QualityConfig, rows: pl.DataFrame, captures: pl.DataFrame, resamples: int) -> object | None:
    """The overall quality of labeled ``rows`` (of one version) with ``captures`` for coverage."""
    joined = Joined(rows=rows, captures=captures, captured=captures.height, labeled=rows.height, unmatched=0)
    report = measure(quality, joined, confidence=CONFIDENCE, resamples=resamples)
    return report.versions[0].overall if report.versions else None


def realized(overall: object | None, metric: str) -> Estimate | None:
    """A realized metric of the overall quality (None: not computed, or an estimated one)."""
    if overall is None or metric.startswith(ESTIMATED):
        return None
    found: Estimate | None = getattr(overall, metric, None)
    return found


def estimated(
    quality: QualityConfig, captures: pl.DataFrame, baseline: Baseline | None, metric: str
) -> Estimate | None:
    """CBPE's estimate of ``metric`` (estimated_accuracy, ...) over one version's captured rows, labeled or not; its
    interval is CBPE's sampling-error band (None: no baseline, or no row with a score)."""
    if baseline is None or captures.height == 0:
        return None
    version = int(captures["version"][0])
    rows = captures.clear().drop("labeled")  # no labeled rows: the estimate reads captures only
    joined = Joined(rows=rows, captures=captures, captured=captures.height, labeled=0, unmatched=0)
    report = measure(quality, joined, confidence=CONFIDENCE, resamples=1, references={version: baseline.cbpe})
    found = report.versions[0].estimated if report.versions else None
    if found is None:
        return None
    band = getattr(found, metric.removeprefix(ESTIMATED))
    return Estimate(band.value, band.lower, band.upper, found.n, "cbpe")


def _judge_estimated(
    rule: QualityRule, quality: QualityConfig, captures: pl.DataFrame, now: datetime, baseline: Baseline | None
) -> Judgement:
    """An estimated_* rule: judged on the window's captured rows (``min_labeled`` and ``last_rows`` count captured
    rows here, since CBPE needs no label); ``drop`` compares with the evaluation's realized value."""
    span = rule.span
    if span is not None:
        captures = captures.filter(pl.col("ts") >= now - span)
    else:
        captures = captures.tail(rule.last_rows or rule.min_labeled)
    if captures.height == 0:
        return Judgement("insufficient", None, None)
    first, last = captures["ts"].min(), captures["ts"].max()
    assert isinstance(first, datetime)  # a Datetime column's bounds
    assert isinstance(last, datetime)
    start, end = (now - span, now) if span is not None else (first, last + _US)
    window = RuleWindow(start, end, int(captures["labeled"].sum()), captures.height)
    if captures.height < rule.min_labeled:
        return Judgement("insufficient", None, window)
    estimate = estimated(quality, captures, baseline, rule.metric)
    if estimate is None or math.isnan(estimate.value):
        return Judgement("insufficient", estimate, window)
    if rule.op == "drop":
        assert baseline is not None  # an estimate needs one
        base = baseline.metrics.get(rule.metric.removeprefix(ESTIMATED))
        if base is None:
            return Judgement("insufficient", estimate, window)
        return Judgement("firing" if estimate.value < base - rule.threshold else "ok", estimate, window)
    return Judgement("firing" if estimate.value < rule.threshold else "ok", estimate, window)


def judge(
    rule: QualityRule,
    quality: QualityConfig,
    joined: Joined,
    now: datetime,
    resamples: int = DEFAULT_RESAMPLES,
    baseline: Baseline | None = None,
) -> Judgement:
    """Judge ``rule`` on one version's joined rows (which must reach back far enough for its window); the
    verdict rests on the metric's value, which ``resamples`` (the bootstrap's, for its interval) does not change.

    Raises:
        BadRequest: the rows cannot be measured (labels of the wrong kind for the predictions, ...).
    """
    if rule.metric.startswith(ESTIMATED):
        return _judge_estimated(rule, quality, joined.captures, now, baseline)
    rows, captures = joined.rows, joined.captures
    span = rule.span
    if span is not None:
        start, end = now - span, now
        rows, captures = rows.filter(pl.col("ts") >= start), captures.filter(pl.col("ts") >= start)
    else:
        rows = rows.tail(rule.last_rows or rule.min_labeled)  # capture order: the newest labeled rows
        if rows.height == 0:
            return Judgement("insufficient", None, None)
        first, last = rows["ts"].min(), rows["ts"].max()
        assert isinstance(first, datetime)  # a Datetime column's bounds
        assert isinstance(last, datetime)
        start, end = first, last + _US
        captures = captures.filter(pl.col("ts") >= start)
    window = RuleWindow(start, end, rows.height, captures.height)
    if rows.height < rule.min_labeled:
        return Judgement("insufficient", None, window)
    estimate = realized(overall_of(quality, rows, captures, resamples), rule.metric)
    if estimate is None or math.isnan(estimate.value):
        return Judgement("insufficient", estimate, window)
    bad = estimate.value < rule.threshold if rule.op == "below" else estimate.value > rule.threshold
    return Judgement("firing" if bad else "ok", estimate, window)
