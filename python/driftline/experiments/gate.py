"""The promotion gate: a proposal of version V for an alias may be approved once the newest experiment of V (a
treatment arm) against the alias's current version (the control) passes its rules. The approval keeps that
experiment's final numbers on the proposal, so an auditor can rebuild why the version went live."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.errors import Conflict
from driftline.experiments.service import decode
from driftline.lifecycle.proposals import Gate

if TYPE_CHECKING:
    from driftline.experiments.report import ExperimentReport
    from driftline.experiments.service import Experiments
    from driftline.experiments.spec import Experiment
    from driftline.store.proposals import Proposal

__all__ = ["conclude", "promotion_gate", "record"]


def _experiment_of(experiments: Experiments, proposal: Proposal) -> Experiment | None:
    """The newest experiment of the proposed version against the version the alias points at now."""
    current = experiments.lifecycle.table.routes(proposal.model).aliases.get(proposal.alias)
    for row in experiments.store.experiments(proposal.model):
        found = decode(row)
        arms = found.spec.arms
        if found.version(arms[0].name) == current and any(found.version(a.name) == proposal.version for a in arms[1:]):
            return found
    return None


def record(experiment: Experiment, report: ExperimentReport) -> dict[str, Any]:
    """The promotion record: the experiment, its arms' versions, the report's final numbers (without the history of
    looks, which the report keeps), the rules as judged, and whether it was ready."""
    metrics = msgspec.to_builtins(report.metrics)
    for metric in metrics:
        for comparison in metric["comparisons"]:
            del comparison["history"]
    return {
        "experiment": experiment.id,
        "name": experiment.spec.name,
        "versions": experiment.versions,
        "as_of": report.as_of.isoformat(),
        "ready": report.ready,
        "metrics": metrics,
        "rules": [{"text": r.text, "passed": r.passed, "evidence": r.evidence} for r in report.rules],
    }


def promotion_gate(experiments: Experiments, proposal: Proposal) -> Gate | None:
    """The gate's answer for ``proposal`` (blocking: the report reads captured rows); None when no experiment
    compares its version with the alias's."""
    experiment = _experiment_of(experiments, proposal)
    if experiment is None:
        return None
    name = f"experiment {experiment.id} {experiment.spec.name!r}"
    if experiments.reports is None:
        return Gate(False, f"{name}: this server cannot report on experiments", {"experiment": experiment.id})
    report = experiments.reports.report(experiment)
    if report.ready:
        text = f"{name}: every rule passes" + "".join(f"; {r.text}: {r.evidence}" for r in report.rules)
        return Gate(True, text, record(experiment, report))
    why = [f"rule {r.text!r} fails: {r.evidence}" for r in report.rules if not r.passed]
    why += [f"guardrail {metric!r} is significantly worse" for metric in report.breached]
    if report.sample_ratio is not None and report.sample_ratio.flagged:
        why.append(f"the sample-ratio check flags the assignment counts (p = {report.sample_ratio.p_value:.2g})")
    return Gate(False, f"{name}: " + "; ".join(why), record(experiment, report))


async def conclude(experiments: Experiments, proposal: Proposal, actor: str) -> None:
    """A promotion approved on an experiment's evidence ends that experiment, if it still runs: its routing goes
    (the canary would otherwise outlive the decision) and it is stopped by the promoter, on record."""
    eid = (proposal.evidence or {}).get("experiment")
    if not isinstance(eid, int):
        return
    experiment = experiments.get(proposal.model, eid)
    if experiment.state != "running":
        return
    why = f"concluded: version {proposal.version} promoted to {proposal.alias!r} (proposal {proposal.id})"
    with contextlib.suppress(Conflict):  # stopped meanwhile, by an operator or its watcher
        await experiments.stop(proposal.model, eid, actor, why)
