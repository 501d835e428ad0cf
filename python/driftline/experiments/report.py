"""An experiment's report: the JSON of ``GET /v1/admin/models/{m}/experiments/{e}`` and what the promotion gate
and the guardrail stop read (``ready``, ``rules``, ``breached``).

:func:`build_report` is pure (numbers from :mod:`driftline.experiments.numbers`, decisions from
:mod:`driftline.experiments.decisions`); :class:`ExperimentReports` gathers the data first (blocking).
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 - msgspec needs it at run time
from typing import TYPE_CHECKING

import msgspec

from driftline.experiments.decisions import RuleResult, breached, judge
from driftline.experiments.numbers import MetricReport, measure_metric
from driftline.experiments.spec import Experiment  # noqa: TC001 - msgspec needs it at run time
from driftline.stats.corrections import adjust
from driftline.stats.ratio import sample_ratio

if TYPE_CHECKING:
    from driftline.experiments.data import ExperimentData, ExperimentSources
    from driftline.experiments.spec import ExperimentSpec

__all__ = ["ExperimentReport", "ExperimentReports", "SampleRatioCheck", "build_report"]


class SampleRatioCheck(msgspec.Struct, frozen=True):
    """The assignment counts against the design's weights (chi-square); ``flagged`` at p < 0.001: the traffic
    did not split as designed, so no comparison can be trusted until the cause is found."""

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    flagged: bool


class ExperimentReport(msgspec.Struct, frozen=True):
    """Where an experiment stands as of ``as_of`` (see docs/experiments.md).

    Attributes:
        assignments: Per arm, the routed requests its version answered or failed.
        sample_ratio: The SRM check (canary and split; None for a shadow, where both arms answer every request).
        metrics: Per metric its arms and each treatment's comparison with the control.
        rules: Each promotion rule (or the implied one) per treatment arm.
        ready: Every rule passes, no SRM flag and no guardrail breached: the promotion gate's answer.
        breached: The guardrail metrics a treatment is significantly worse on.
    """

    experiment: Experiment
    as_of: datetime
    assignments: dict[str, int]
    sample_ratio: SampleRatioCheck | None
    metrics: list[MetricReport]
    rules: list[RuleResult]
    ready: bool
    breached: list[str]


def _sample_ratio(spec: ExperimentSpec, assignments: dict[str, int]) -> SampleRatioCheck | None:
    design = spec.design
    if design.canary is not None:
        weights = [100.0 - design.canary, design.canary]
    elif design.split is not None:
        weights = [design.split[a.name] for a in spec.arms]
    else:
        return None
    names = [a.name for a in spec.arms]
    observed = [assignments.get(n, 0) for n in names]
    if sum(observed) == 0:
        return SampleRatioCheck(dict(zip(names, observed, strict=True)), dict.fromkeys(names, 0.0), 0.0, 1.0, False)
    check = sample_ratio(observed, weights)
    return SampleRatioCheck(
        dict(zip(names, observed, strict=True)),
        dict(zip(names, check.expected, strict=True)),
        check.chi2,
        check.p_value,
        check.flagged,
    )


def _adjusted(spec: ExperimentSpec, metrics: list[MetricReport]) -> list[MetricReport]:
    """The metrics with each comparison's p-value adjusted by the spec's correction across the metrics, per
    treatment arm (latency_p99 has no p-value and takes no part)."""
    for arm in spec.arms[1:]:
        where = [
            (i, j)
            for i, m in enumerate(metrics)
            for j, v in enumerate(m.comparisons)
            if v.arm == arm.name and v.p_value is not None
        ]
        if not where:
            continue
        raw = [metrics[i].comparisons[j].p_value for i, j in where]
        for (i, j), p in zip(where, adjust([p for p in raw if p is not None], spec.correction), strict=True):
            comparisons = list(metrics[i].comparisons)
            comparisons[j] = msgspec.structs.replace(comparisons[j], adjusted_p_value=float(p))
            metrics[i] = msgspec.structs.replace(metrics[i], comparisons=comparisons)
    return metrics


def build_report(experiment: Experiment, data: ExperimentData, as_of: datetime) -> ExperimentReport:
    """The report of ``experiment`` on ``data`` (pure)."""
    spec = experiment.spec
    metrics = _adjusted(spec, [measure_metric(spec, m, data) for m in spec.metrics])
    srm = _sample_ratio(spec, data.assignments)
    rules = judge(spec, metrics)
    stop = breached(spec, metrics)
    ready = all(r.passed for r in rules) and not (srm is not None and srm.flagged) and not stop
    return ExperimentReport(experiment, as_of, dict(data.assignments), srm, metrics, rules, ready, stop)


class ExperimentReports:
    """Reports of running and stopped experiments from the server's live parts."""

    def __init__(self, sources: ExperimentSources) -> None:
        """Gather through ``sources``."""
        self._sources = sources

    def report(self, experiment: Experiment, *, until: datetime | None = None) -> ExperimentReport:
        """The report over ``[started_at, until or stopped_at or now)``; blocking (reads captures once).

        Raises:
            Conflict: as ExperimentSources.gather.
        """
        data = self._sources.gather(experiment, until)
        return build_report(experiment, data, data.end)
