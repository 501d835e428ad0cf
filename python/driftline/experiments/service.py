"""Experiments created, read and stopped, on the lifecycle (its routing, lock and audit log) and the store.

Creating one checks everything first (each refusal a 4xx naming the field, nothing changed), pins every arm to the
version it resolves to now, records it, and applies its design as the model's routing through
:meth:`Lifecycle.set_routing` by version number, so an alias that moves later does not change the arms. A refused
routing change removes the record again: all or none. Stopping removes the routing the experiment set (when it is
still the one it set); the guardrail stop (:meth:`Experiments.halt`) does the same, unasked, and tells the webhooks.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import quote

import msgspec

from driftline.errors import BadRequest, Conflict, DriftlineError, NotFound
from driftline.experiments.spec import Experiment, ExperimentSpec
from driftline.repository.names import is_version
from driftline.serving.routing import Canary, RoutingPolicy, Shadow, Split, policy_tag
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Sequence

    from driftline.capture.service import CaptureService
    from driftline.experiments.report import ExperimentReport
    from driftline.feedback.service import LiveQuality
    from driftline.lifecycle.service import Lifecycle
    from driftline.serving.loaded import LoadedModel
    from driftline.store.experiments import ExperimentRow, ExperimentStore

__all__ = ["Experiments", "Reports", "breach_evidence", "decode", "routing_part"]

_log = logging.getLogger("driftline.experiments")
_VERSIONS = msgspec.json.Decoder(dict[str, int])


class Reports(Protocol):
    """The blocking report of an experiment (:class:`driftline.experiments.report.ExperimentReports`)."""

    def report(self, experiment: Experiment, *, until: datetime | None = None) -> ExperimentReport: ...


def decode(row: ExperimentRow) -> Experiment:
    """A stored experiment as the service hands it out."""
    fields = msgspec.structs.asdict(row)
    del fields["name"]  # the spec holds it; the column lets SQL find experiments by name
    fields["spec"] = msgspec.json.decode(row.spec)
    fields["versions"] = _VERSIONS.decode(row.versions)
    return msgspec.convert(fields, Experiment)


def routing_part(spec: ExperimentSpec, versions: dict[str, int]) -> RoutingPolicy:
    """The part of a model's routing an experiment sets: its design, targets pinned by version number."""
    design = spec.design
    treatment = str(versions[spec.arms[1].name])
    if design.canary is not None:
        return RoutingPolicy(canary=Canary(target=treatment, percent=design.canary))
    if design.split is not None:
        weights = {str(versions[arm]): weight for arm, weight in design.split.items()}
        return RoutingPolicy(split=Split(weights=weights, parameter=design.parameter, header=design.header))
    assert design.shadow is not None
    return RoutingPolicy(shadow=Shadow(target=treatment, percent=design.shadow))


def _with(current: RoutingPolicy, part: RoutingPolicy) -> RoutingPolicy:
    """``current`` with the experiment's part put in (a shadow combines with a canary or split)."""
    if part.shadow is not None:
        return RoutingPolicy(canary=current.canary, split=current.split, shadow=part.shadow)
    return RoutingPolicy(canary=part.canary, split=part.split, shadow=current.shadow)


def _without(current: RoutingPolicy, part: RoutingPolicy) -> RoutingPolicy | None:
    """``current`` with the experiment's part taken out; None when that part is no longer what routes (an
    operator changed it since): then the routing is left alone."""
    if part.shadow is not None:
        return RoutingPolicy(canary=current.canary, split=current.split) if current.shadow == part.shadow else None
    if (current.canary, current.split) == (part.canary, part.split):
        return RoutingPolicy(shadow=current.shadow)
    return None


def _slot(kind: str) -> str:
    """Which part of the routing policy a design takes: a canary and a split share one."""
    return "shadow" if kind == "shadow" else "canary/split"


class Experiments:
    """Create, read, stop and halt experiments; see the module docstring."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        store: ExperimentStore,
        quality: LiveQuality,
        capture: CaptureService | None,
        *,
        reports: Reports | None = None,
        send: Callable[[bytes], None] | None = None,
        base_url: str = "",
    ) -> None:
        """Route through ``lifecycle``; keep experiments in ``store``; ``quality`` says which models take labels,
        ``capture`` which versions capture; ``reports`` judges them (the watcher, the gate); guardrail stops go to
        ``send`` (the server's one webhook sender; None: no webhook), naming report URLs under ``base_url``."""
        self.lifecycle = lifecycle
        self.store = store
        self.quality = quality
        self.capture = capture
        self.reports = reports
        self.send = send
        self.base_url = base_url.rstrip("/")
        # Held from a create's checks to its audit record (and around each stop), so two never interleave.
        self._lock = asyncio.Lock()

    # -- read ---------------------------------------------------------------------------------------------------

    def get(self, model: str, eid: int) -> Experiment:
        """One experiment of ``model``.

        Raises:
            ModelNotFound / NotFound: no such model, or it has no experiment ``eid``.
        """
        self.lifecycle.table.require_known(model)
        row = self.store.get(model, eid)
        if row is None:
            raise NotFound(f"model {model!r} has no experiment {eid}")
        return decode(row)

    def list(self, model: str, state: Literal["running", "stopped"] | None = None) -> list[Experiment]:
        """A model's experiments, newest first; optionally only the running or the stopped ones."""
        self.lifecycle.table.require_known(model)
        return [decode(r) for r in self.store.experiments(model, state)]

    def running(self) -> builtins.list[Experiment]:
        """Every running experiment of every model (the watcher's work)."""
        return [decode(r) for r in self.store.experiments(state="running")]

    def report_url(self, experiment: Experiment) -> str:
        """Where the experiment's report is read."""
        return f"{self.base_url}/v1/admin/models/{quote(experiment.model, safe='')}/experiments/{experiment.id}"

    # -- create -------------------------------------------------------------------------------------------------

    async def create(self, model: str, spec: ExperimentSpec, actor: str) -> Experiment:
        """Check, record and start an experiment (see the module docstring)."""
        lc = self.lifecycle
        lc.table.require(model)  # unknown: 404; known but not loaded: 503
        _check_ends_at(spec)
        numbers = {int(a.target) for a in spec.arms if is_version(a.target)}
        await lc.catch_up(model, numbers)
        async with self._lock:
            versions = self._check(model, spec)
            policy = _with(lc.table.routes(model).policy, routing_part(spec, versions))
            row = self.store.create(
                model,
                spec.name,
                msgspec.json.encode(spec).decode(),
                msgspec.json.encode(versions).decode(),
                actor,
                policy_tag(policy),
            )
            why = f"experiment {row.id} {spec.name!r}"
            try:
                await lc.set_routing(model, policy, actor, why)
            except BaseException:
                self.store.delete(row.id)
                raise
            control, treatment = versions[spec.arms[0].name], versions[spec.arms[1].name]
            lc.audit.record(
                AuditAction.EXPERIMENT_STARTED,
                model,
                actor=actor,
                version_before=str(control),
                version_after=str(treatment),
                reason=f"{why}: {spec.reason}" if spec.reason else why,
            )
        return decode(row)

    def _check(self, model: str, spec: ExperimentSpec) -> dict[str, int]:
        """The arms pinned to versions, once every check passed; else the 4xx naming the field."""
        table = self.lifecycle.table
        routes = table.routes(model)
        loaded = table.loaded()[model]
        versions: dict[str, int] = {}
        for i, arm in enumerate(spec.arms):
            version = routes.resolve(arm.target)
            field = f"arms[{i}].target {arm.target!r}"
            if version is None:
                raise Conflict(f"{field}: model {model!r} has no version or alias {arm.target!r}")
            self.lifecycle.require_loaded(model, version, field)
            other = next((a for a, v in versions.items() if v == version), None)
            if other is not None:
                raise Conflict(f"{field}: it is version {version}, as arm {other!r} is; each arm needs its own version")
            versions[arm.name] = version
        kind = spec.design.kind
        control = versions[spec.control.name]
        default = routes.default(loaded)
        if kind != "split" and control != default:
            raise Conflict(
                f"arms[0].target {spec.control.target!r}: the control of a {kind} is what model {model!r}'s "
                f"default route answers today (version {default}), not version {control}"
            )
        self._check_overlap(model, spec, versions)
        self._check_metrics(model, spec, [loaded[v] for v in versions.values()])
        return versions

    def _check_overlap(self, model: str, spec: ExperimentSpec, versions: dict[str, int]) -> None:
        slot = _slot(spec.design.kind)
        for row in self.store.experiments(model, "running"):
            other = decode(row)
            shared = sorted(set(other.versions.values()) & set(versions.values()))
            if shared or _slot(other.spec.design.kind) == slot:
                why = (
                    f"both use version(s) {', '.join(map(str, shared))}"
                    if shared
                    else f"both need the model's {slot} routing"
                )
                raise Conflict(
                    f"arms overlap running experiment {other.id} {other.spec.name!r} of model {model!r}: {why}; "
                    "stop it first"
                )
        policy = self.lifecycle.table.routes(model).policy
        taken = policy.shadow if slot == "shadow" else policy.canary or policy.split
        if taken is not None:
            text = msgspec.json.encode(taken).decode()
            raise Conflict(
                f"design: model {model!r} already routes by a {slot} no experiment set ({text}); clear it first"
            )

    def _check_metrics(self, model: str, spec: ExperimentSpec, arms: Sequence[LoadedModel]) -> None:
        for i, metric in enumerate(spec.metrics):
            field = f"metrics[{i}] {metric.name!r}"
            if metric.kind == "kpi" and spec.design.kind == "shadow":
                raise BadRequest(
                    f"{field}: a kpi metric cannot be measured under a shadow design (users never see the "
                    "shadow's answer); use a canary or a split"
                )
            if metric.kind == "quality":
                try:
                    self.quality.config(model)
                except Conflict as exc:
                    raise Conflict(f"{field}: {exc}") from None
            if metric.kind in {"kpi", "quality"}:
                for arm in arms:
                    if self.capture is None or self.capture.plan(model, arm.version, arm.source) is None:
                        raise Conflict(
                            f"{field}: a {metric.kind} metric is measured on captured requests, and version "
                            f"{arm.version} of model {model!r} captures none (turn on [capture] enabled = true)"
                        )

    # -- stop ---------------------------------------------------------------------------------------------------

    async def stop(
        self,
        model: str,
        eid: int,
        actor: str,
        reason: str | None = None,
        action: AuditAction = AuditAction.EXPERIMENT_STOPPED,
    ) -> Experiment:
        """Stop a running experiment: its routing goes (back to the default alias) when it is still the one it
        set, then it is marked stopped and audited. Stopping one that stopped already is a 409."""
        lc = self.lifecycle
        async with self._lock:
            experiment = self.get(model, eid)
            if experiment.state != "running":
                raise Conflict(
                    f"experiment {eid} of model {model!r} is stopped already "
                    f"(by {experiment.stopped_by} at {experiment.stopped_at}: {experiment.stop_reason or 'no reason'})"
                )
            why = f"experiment {eid} {experiment.spec.name!r} stopped"
            back = _without(lc.table.routes(model).policy, routing_part(experiment.spec, experiment.versions))
            if back is not None:
                await lc.set_routing(model, back, actor, why)
            if not self.store.stop(eid, actor, reason):
                raise Conflict(f"experiment {eid} of model {model!r} was stopped meanwhile")
            lc.audit.record(
                action,
                model,
                actor=actor,
                version_after=str(experiment.version(experiment.spec.arms[1].name)),
                reason=f"{why}: {reason}" if reason else why,
            )
        return self.get(model, eid)

    async def halt(self, model: str, eid: int, metric: str, evidence: str) -> Experiment:
        """The guardrail stop: the treatment's traffic goes to 0 (the experiment's routing removed), the experiment
        stops with the guardrail and its evidence as the reason, and the webhooks are told."""
        reason = f"guardrail {metric}: {evidence}"
        stopped = await self.stop(model, eid, "system", reason, AuditAction.EXPERIMENT_GUARDRAIL_STOP)
        _log.warning("experiment %d of model %s stopped by its guardrail: %s", eid, model, reason)
        if self.send is not None:
            event = {
                "kind": "experiment_guardrail",
                "model": model,
                "experiment": eid,
                "metric": metric,
                "evidence": evidence,
                "report_url": self.report_url(stopped),
            }
            self.send(msgspec.json.encode(event))
        return stopped

    # -- the watcher's pass -------------------------------------------------------------------------------------

    async def check(self, now: datetime | None = None) -> int:
        """One pass over the running experiments: those past ``ends_at`` stop; those with ``guardrail_stop``
        whose report shows a guardrail breached are halted. At most one report per experiment; returns how many
        stopped."""
        at = now or datetime.now(UTC)
        stopped = 0
        for experiment in self.running():
            try:
                stopped += await self._check_one(experiment, at)
            except DriftlineError as exc:  # stopped meanwhile, its model unloaded: the next pass goes on
                _log.warning("experiment %d of model %s not checked: %s", experiment.id, experiment.model, exc)
            except Exception:  # noqa: BLE001 - one experiment's failed report must not keep the others unchecked
                _log.exception("experiment %d of model %s: check failed", experiment.id, experiment.model)
        return stopped

    async def _check_one(self, experiment: Experiment, at: datetime) -> int:
        ends = experiment.spec.ends_at
        if ends is not None and ends <= at:
            await self.stop(experiment.model, experiment.id, "system", f"ends_at {ends.isoformat()} reached")
            return 1
        if experiment.spec.guardrail_stop and self.reports is not None:
            report = await asyncio.to_thread(self.reports.report, experiment)
            if report.breached:
                metric = report.breached[0]
                await self.halt(experiment.model, experiment.id, metric, breach_evidence(report, metric))
                return 1
        return 0


def _check_ends_at(spec: ExperimentSpec) -> None:
    """``ends_at`` carries a timezone (the watcher compares it with now) and lies ahead."""
    ends = spec.ends_at
    if ends is None:
        return
    if ends.tzinfo is None:
        raise BadRequest(f"ends_at must carry a timezone (e.g. 2026-01-31T00:00:00Z), got {ends.isoformat()}")
    if ends <= datetime.now(UTC):
        raise BadRequest(f"ends_at {ends.isoformat()} has passed already")


def breach_evidence(report: ExperimentReport, metric: str) -> str:
    """A breached guardrail's evidence in words: each worse treatment's difference and its interval."""
    level = f"{report.experiment.spec.confidence:.0%}"
    found = next((m for m in report.metrics if m.name == metric), None)
    worse = [] if found is None else [c for c in found.comparisons if c.verdict == "worse"]
    if not worse:
        return f"significantly worse than the control at {level}"
    return "; ".join(
        f"{c.arm} - control = {c.absolute.estimate:.4g}, interval [{c.absolute.lower:.4g}, {c.absolute.upper:.4g}] "
        f"at {level} ({c.method}), wholly on the bad side"
        for c in worse
    )
