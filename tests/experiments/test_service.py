"""The experiments service on a real model table, lifecycle, store, capture and audit log (in process): create, read,
stop; every refusal naming its field with nothing changed; the guardrail halt (a webhook at a real local receiver);
the watcher's pass; the promotion gate on the real Proposals, judged by real reports (build_report) of data the
test controls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np
import pytest
from tests.helpers import write_config
from tests.webhooks import Receiver

from driftline.capture.service import CaptureService
from driftline.config import CaptureSettings
from driftline.errors import BadRequest, Conflict, ModelNotFound, NotFound
from driftline.experiments.data import ExperimentData, Units
from driftline.experiments.gate import conclude, promotion_gate
from driftline.experiments.report import ExperimentReport, build_report
from driftline.experiments.service import Experiments
from driftline.experiments.spec import Arm, Design, Experiment, ExperimentSpec, Metric, Rule
from driftline.feedback.service import LiveQuality
from driftline.lifecycle.proposals import Proposals
from driftline.lifecycle.service import Lifecycle
from driftline.repository import Repository
from driftline.repository.demo import build_classifier_onnx
from driftline.server.webhooks import WebhookSender
from driftline.serving.routing import Canary, RoutingPolicy, Shadow, Split
from driftline.serving.table import ModelTable
from driftline.store.audit import AuditLog
from driftline.store.captures import CaptureIndex
from driftline.store.db import open_database
from driftline.store.deployments import DeploymentStore
from driftline.store.experiments import ExperimentStore
from driftline.store.feedback import FeedbackStore
from driftline.store.proposals import ProposalStore
from driftline.store.shadow_stats import ShadowStatsStore
from driftline.store.traffic import LATENCY_BOUNDS, TrafficTotals

QUALITY = '[quality]\ntask = "classification"\nlabel_output = "label"\nclasses = [0, 1, 2]\n'
BASE = 'max_batch_size = 16\nversion_policy = { policy = "all" }\naliases = { champion = 1, challenger = 2 }\n'
CONVERSION = Metric(name="conversion", kind="kpi", direction="increase")
ERRORS = Metric(name="errors", kind="error_rate", direction="decrease")


@pytest.fixture
def experiment_repo(repo: Path, iris_weights) -> Path:
    """``iris`` (v1, v2; captures; [quality]), ``plain`` (v1, v2; neither), ``sig`` (v2 takes 5 features)."""
    w, b = iris_weights
    write_config(repo / "iris", BASE + "[capture]\nenabled = true\n" + QUALITY)
    for v, scale in ((1, 1), (2, 2)):
        build_classifier_onnx(repo / "plain" / str(v) / "model.onnx", w * scale, b)
    write_config(repo / "plain", BASE)
    build_classifier_onnx(repo / "sig" / "1" / "model.onnx", w, b)
    build_classifier_onnx(repo / "sig" / "2" / "model.onnx", np.vstack([w, w[:1]]), b)
    write_config(repo / "sig", BASE)
    return repo


class Controlled:
    """Real reports (build_report) of data the test sets: ``better`` makes the treatment win."""

    def __init__(self) -> None:
        self.better = False
        self.breach = False
        self.calls = 0

    def report(self, experiment: Experiment, *, until: datetime | None = None) -> ExperimentReport:
        self.calls += 1
        rng = np.random.default_rng(7)
        n = 4000
        start = experiment.started_at
        at = (start.timestamp() * 1e6 + np.arange(n) * 1e6).astype(np.int64)
        lift = 0.2 if self.better else 0.0
        canary = experiment.spec.design.canary
        share = 50 if canary is None else int(canary)  # assignments as designed: no sample-ratio flag
        units = {
            "control": Units(rng.binomial(1, 0.3, n).astype(np.float64), at),
            "treatment": Units(rng.binomial(1, 0.3 + lift, n).astype(np.float64), at),
        }
        latency = [0] * (len(LATENCY_BOUNDS) + 1)
        traffic = {
            "control": TrafficTotals(n, 40, latency),
            "treatment": TrafficTotals(n, 400 if self.breach else 40, latency),
        }
        end = start + timedelta(hours=1)
        data = ExperimentData(
            start=start,
            end=end,
            versions=experiment.versions,
            unit="request",
            assignments={"control": n * (100 - share) // share, "treatment": n},
            units={"conversion": units},
            pairs={},
            traffic=traffic,
            series=[(end, traffic)],
        )
        return build_report(experiment, data, end)


class Running:
    def __init__(self, root: Path, tmp: Path, send=None) -> None:
        self.db = open_database(tmp / "driftline.db")
        self.audit = AuditLog(self.db)
        self.table = ModelTable(Repository(root), asyncio.get_running_loop(), self.audit)
        self.lifecycle = Lifecycle(
            self.table, DeploymentStore(self.db), ShadowStatsStore(self.db), self.audit, "champion"
        )
        self.capture = CaptureService(tmp / "captures", CaptureIndex(self.db), CaptureSettings())
        quality = LiveQuality(self.table, FeedbackStore(self.db), self.capture.reader)
        self.reports = Controlled()
        self.experiments = Experiments(
            self.lifecycle,
            ExperimentStore(self.db),
            quality,
            self.capture,
            reports=self.reports,
            send=send,
            base_url="http://127.0.0.1:1",
        )
        self.proposals = Proposals(
            self.lifecycle,
            ProposalStore(self.db),
            lambda p: promotion_gate(self.experiments, p),
            lambda p, actor: conclude(self.experiments, p, actor),
        )

    async def start(self) -> Running:
        self.lifecycle.seed()
        await self.table.load_all()
        self.lifecycle.refresh()
        return self

    async def stop(self) -> None:
        await self.table.shadows.drain()
        await self.table.close()
        self.capture.close()
        self.db.close()


@pytest.fixture
async def running(experiment_repo: Path, tmp_path: Path):
    r = await Running(experiment_repo, tmp_path).start()
    yield r
    await r.stop()


def spec(design: Design | None = None, *, arms: tuple[str, str] = ("1", "2"), **kw) -> ExperimentSpec:
    fields = {"metrics": [CONVERSION, ERRORS], "primary": "conversion", "guardrails": ["errors"], **kw}
    return ExperimentSpec(
        name="checkout",
        arms=[Arm("control", arms[0]), Arm("treatment", arms[1])],
        design=design or Design(canary=30),
        **fields,
    )


def state(r: Running, model: str = "iris") -> tuple[object, ...]:
    """What a refused create must leave as it was: the routing, the stored experiments, the start records."""
    return (
        r.table.routes(model).policy,
        r.lifecycle.deployments.routing().get(model),
        r.experiments.store.experiments(),
        r.audit.events(action="experiment_started"),
    )


async def test_create_pins_versions_routes_by_them_and_stop_restores_the_default(running):
    r = running
    created = await r.experiments.create("iris", spec(arms=("champion", "challenger"), reason="q4"), "key:ops")
    assert created.versions == {"control": 1, "treatment": 2}
    assert created.state == "running"
    assert created.created_by == "key:ops"
    assert r.table.routes("iris").policy == RoutingPolicy(canary=Canary(target="2", percent=30))
    started = r.audit.events("iris", action="experiment_started")
    assert len(started) == 1
    assert started[0].reason == f"experiment {created.id} 'checkout': q4"
    assert (started[0].version_before, started[0].version_after, started[0].actor) == ("1", "2", "key:ops")
    # The alias moving does not move the arm: the routing names the version.
    await r.lifecycle.set_alias("iris", "challenger", 1, "test")
    assert r.table.routes("iris").policy.canary == Canary(target="2", percent=30)
    assert r.experiments.get("iris", created.id) == created
    assert [e.id for e in r.experiments.list("iris", "running")] == [created.id]
    assert r.experiments.list("iris", "stopped") == []

    stopped = await r.experiments.stop("iris", created.id, "key:ops", "enough")
    assert stopped.state == "stopped"
    assert stopped.stopped_by == "key:ops"
    assert stopped.stop_reason == "enough"
    assert stopped.stopped_at is not None
    assert stopped.stopped_at >= stopped.started_at
    assert r.table.routes("iris").policy == RoutingPolicy()
    assert r.lifecycle.deployments.routing().get("iris") is None
    assert [e.reason for e in r.audit.events("iris", action="experiment_stopped")] == [
        f"experiment {created.id} 'checkout' stopped: enough"
    ]
    with pytest.raises(Conflict, match=f"experiment {created.id} of model 'iris' is stopped already"):
        await r.experiments.stop("iris", created.id, "key:ops")
    assert len(r.audit.events("iris", action="experiment_stopped")) == 1
    with pytest.raises(NotFound, match="model 'iris' has no experiment 99"):
        r.experiments.get("iris", 99)
    with pytest.raises(NotFound, match="has no experiment"):
        r.experiments.get("plain", created.id)  # another model's id


async def test_split_and_shadow_designs_route_by_version(running):
    r = running
    split = Design(split={"control": 50, "treatment": 50}, parameter="user")
    first = await r.experiments.create("iris", spec(split, arms=("1", "challenger")), "t")
    assert r.table.routes("iris").policy == RoutingPolicy(split=Split(weights={"1": 50, "2": 50}, parameter="user"))
    await r.experiments.stop("iris", first.id, "t")
    shadow = await r.experiments.create(
        "iris", spec(Design(shadow=100), metrics=[ERRORS], primary="errors", guardrails=[]), "t"
    )
    assert r.table.routes("iris").policy == RoutingPolicy(shadow=Shadow(target="2", percent=100))
    # An operator changed the routing since: a stop leaves it alone.
    await r.lifecycle.set_routing("iris", RoutingPolicy(shadow=Shadow(target="2", percent=10)), "op")
    await r.experiments.stop("iris", shadow.id, "t")
    assert r.table.routes("iris").policy == RoutingPolicy(shadow=Shadow(target="2", percent=10))


@pytest.mark.parametrize(
    ("model", "make", "error", "words"),
    [
        ("nope", lambda: spec(), ModelNotFound, "model 'nope' not found"),
        (
            "iris",
            lambda: spec(arms=("1", "7")),
            Conflict,
            "arms[1].target '7': version 7 of model 'iris' is not loaded",
        ),
        ("iris", lambda: spec(arms=("1", "ghost")), Conflict, "arms[1].target 'ghost': model 'iris' has no version"),
        ("iris", lambda: spec(arms=("2", "1")), Conflict, "arms[0].target '2': the control of a canary"),
        ("iris", lambda: spec(arms=("1", "champion")), Conflict, "arms[1].target 'champion': it is version 1"),
        ("plain", lambda: spec(), Conflict, "metrics[0] 'conversion': a kpi metric is measured on captured requests"),
        (
            "plain",
            lambda: spec(
                metrics=[Metric(name="acc", kind="quality", direction="increase", quality="accuracy")],
                primary="acc",
                guardrails=[],
            ),
            Conflict,
            "metrics[0] 'acc': model 'plain' has no [quality] table",
        ),
        (
            "iris",
            lambda: spec(Design(shadow=50)),
            BadRequest,
            "metrics[0] 'conversion': a kpi metric cannot be measured",
        ),
        ("sig", lambda: spec(metrics=[ERRORS], primary="errors", guardrails=[]), Conflict, "cannot answer model 'sig'"),
        ("iris", lambda: spec(ends_at=datetime(2030, 1, 1)), BadRequest, "ends_at must carry a timezone"),
        ("iris", lambda: spec(ends_at=datetime(2020, 1, 1, tzinfo=UTC)), BadRequest, "has passed already"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_changes(running, model, make, error, words):
    known = model if model != "nope" else "iris"
    before = state(running, known)
    with pytest.raises(error) as refused:
        await running.experiments.create(model, make(), "t")
    assert words in str(refused.value)
    assert state(running, known) == before


async def test_overlapping_experiments_and_a_manual_routing_are_refused(running):
    r = running
    first = await r.experiments.create("iris", spec(), "t")
    before = state(r)
    with pytest.raises(Conflict, match=f"arms overlap running experiment {first.id} 'checkout' of model 'iris'"):
        await r.experiments.create(
            "iris", spec(Design(shadow=100), metrics=[ERRORS], primary="errors", guardrails=[]), "t"
        )
    assert state(r) == before
    await r.experiments.stop("iris", first.id, "t")
    await r.lifecycle.set_routing("iris", RoutingPolicy(canary=Canary(target="2", percent=5)), "op")
    before = state(r)
    with pytest.raises(Conflict, match="design: model 'iris' already routes by a canary/split no experiment set"):
        await r.experiments.create("iris", spec(), "t")
    assert state(r) == before


async def test_the_watcher_halts_a_breached_guardrail_and_stops_at_ends_at(experiment_repo, tmp_path):
    receiver = Receiver()
    sender = WebhookSender([receiver.url], backoff=0.05)
    r = await Running(experiment_repo, tmp_path, send=sender.send).start()
    try:
        guarded = await r.experiments.create("iris", spec(guardrail_stop=True), "t")
        assert await r.experiments.check() == 0  # no breach yet: one report, nothing stops
        assert r.reports.calls == 1
        r.reports.breach = True
        assert await r.experiments.check() == 1
        halted = r.experiments.get("iris", guarded.id)
        assert halted.state == "stopped"
        assert halted.stopped_by == "system"
        assert halted.stop_reason is not None
        assert halted.stop_reason.startswith("guardrail errors: treatment - control")
        assert r.table.routes("iris").policy == RoutingPolicy()  # the treatment's traffic went to 0
        audit = r.audit.events("iris", action="experiment_guardrail_stop")
        assert [(e.actor, e.version_after) for e in audit] == [("system", "2")]
        (event,) = await asyncio.to_thread(receiver.wait_for, 1)
        assert event["kind"] == "experiment_guardrail"
        assert (event["model"], event["experiment"], event["metric"]) == ("iris", guarded.id, "errors")
        assert event["evidence"] in (halted.stop_reason or "")
        assert event["report_url"] == f"http://127.0.0.1:1/v1/admin/models/iris/experiments/{guarded.id}"

        ending = await r.experiments.create("iris", spec(ends_at=datetime.now(UTC) + timedelta(hours=1)), "t")
        calls = r.reports.calls
        assert await r.experiments.check() == 0
        assert r.reports.calls == calls  # no guardrail_stop: no report
        assert await r.experiments.check(datetime.now(UTC) + timedelta(hours=2)) == 1
        ended = r.experiments.get("iris", ending.id)
        assert ended.state == "stopped"
        assert ended.stopped_by == "system"
        assert (ended.stop_reason or "").startswith("ends_at ")
        assert r.audit.events("iris", action="experiment_stopped")[0].actor == "system"
    finally:
        await r.stop()
        await asyncio.to_thread(sender.close)
        receiver.close()


async def test_the_gate_refuses_approval_until_the_experiment_passes_and_keeps_its_numbers(running):
    r = running
    rules = [Rule(metric="conversion", require="better"), Rule(metric="conversion", require="min_sample", n=1000)]
    created = await r.experiments.create("iris", spec(rules=rules), "key:ops")
    proposal = await r.proposals.propose("iris", 2, "champion", None, "key:ops")
    with pytest.raises(Conflict, match=r"cannot be approved yet: .*rule 'conversion: better than control") as refused:
        await r.proposals.approve(proposal.id, "key:admin")
    assert f"experiment {created.id} 'checkout'" in str(refused.value)
    assert r.proposals.get(proposal.id).state == "proposed"
    assert r.proposals.get(proposal.id).evidence is None
    assert "fails" in (r.audit.events("iris", action="approve_refused")[0].reason or "")

    r.reports.better = True
    approved = await r.proposals.approve(proposal.id, "key:admin")
    assert approved.state == "approved"
    assert approved.decided_by == "key:admin"
    record = approved.evidence
    assert record is not None
    assert (record["experiment"], record["ready"], record["approved_by"]) == (created.id, True, "key:admin")
    assert record["versions"] == {"control": 1, "treatment": 2}
    assert [m["name"] for m in record["metrics"]] == ["conversion", "errors"]
    assert all("history" not in c for m in record["metrics"] for c in m["comparisons"])
    assert all(rule["passed"] for rule in record["rules"])
    assert "every rule passes" in (r.audit.events("iris", action="approve")[0].reason or "")
    promoted = await r.proposals.promote(proposal.id, "key:admin")
    assert promoted.state == "promoted"
    assert promoted.evidence == record
    assert msgspec.json.decode(msgspec.json.encode(promoted))["evidence"] == record
    # The promotion concluded the experiment: stopped by the promoter, its canary gone.
    concluded = r.experiments.get("iris", created.id)
    assert (concluded.state, concluded.stopped_by) == ("stopped", "key:admin")
    assert f"version 2 promoted to 'champion' (proposal {proposal.id})" in (concluded.stop_reason or "")
    assert r.table.routes("iris").policy.empty


async def test_the_gate_names_a_breached_guardrail_even_when_every_rule_passes(running):
    r = running
    await r.experiments.create("iris", spec(rules=[Rule(metric="conversion", require="better")]), "key:ops")
    proposal = await r.proposals.propose("iris", 2, "champion", None, "key:ops")
    r.reports.better = r.reports.breach = True  # the treatment converts better, but fails ten times as often
    with pytest.raises(Conflict, match=r"guardrail 'errors' is significantly worse") as refused:
        await r.proposals.approve(proposal.id, "key:admin")
    assert "rule" not in str(refused.value).split("checkout'")[1], refused.value  # no rule fails: only the guardrail
    assert r.proposals.get(proposal.id).state == "proposed"


async def test_a_proposal_without_an_experiment_has_only_its_shadow_rule(running):
    r = running
    await r.experiments.create("iris", spec(), "t")  # 1 vs 2; the proposal below is for another alias pair
    await r.lifecycle.set_alias("iris", "staging", 2, "t")
    proposal = await r.proposals.propose("iris", 1, "staging", None, "t")
    approved = await r.proposals.approve(proposal.id, "t")
    assert approved.state == "approved"
    assert approved.evidence is None
