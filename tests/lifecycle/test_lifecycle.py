"""The lifecycle service on a real model table, store and audit log (in process): aliases, routing, pins,
propose -> approve -> promote -> rollback, refusals that leave the state as it was, restarts, hot reloads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from tests.helpers import write_config

from driftline.errors import BadRequest, Conflict, ModelNotFound, ModelNotReady, NotFound, ProposalNotFound
from driftline.http.infer import infer_rest
from driftline.lifecycle.approval import ApprovalRule
from driftline.lifecycle.proposals import Proposals
from driftline.lifecycle.service import Lifecycle
from driftline.lifecycle.status import model_status
from driftline.repository import Repository
from driftline.repository.demo import build_classifier_onnx
from driftline.security.keys import KeyRing
from driftline.server.collectors import LifecycleCollector
from driftline.serving.dataplane import DataPlane
from driftline.serving.routing import RoutingPolicy, Shadow, Split
from driftline.serving.table import ModelTable
from driftline.store.audit import AuditLog
from driftline.store.db import open_database
from driftline.store.deployments import DeploymentStore
from driftline.store.proposals import ProposalStore
from driftline.store.shadow_stats import ShadowStatsStore

ROW = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}


@pytest.fixture
def lifecycle_repo(repo: Path, iris_weights) -> Path:
    w, b = iris_weights
    write_config(
        repo / "iris", 'max_batch_size = 16\nversion_policy = { policy = "all" }\naliases = { champion = 2 }\n'
    )
    # `sig` v2 takes 5 features where v1 takes 4: no alias may move from one to the other.
    build_classifier_onnx(repo / "sig" / "1" / "model.onnx", w, b)
    build_classifier_onnx(repo / "sig" / "2" / "model.onnx", np.vstack([w, w[:1]]), b)
    write_config(repo / "sig", 'max_batch_size = 8\nversion_policy = { policy = "all" }\naliases = { champion = 1 }\n')
    return repo


class Running:
    """A table + lifecycle over one SQLite file, as the server's lifespan builds them."""

    def __init__(self, root: Path, db_path: Path) -> None:
        self.db = open_database(db_path)
        self.audit = AuditLog(self.db)
        self.table = ModelTable(Repository(root), asyncio.get_running_loop(), self.audit)
        self.lifecycle = Lifecycle(
            self.table, DeploymentStore(self.db), ShadowStatsStore(self.db), self.audit, "champion"
        )
        self.proposals = Proposals(self.lifecycle, ProposalStore(self.db))
        self.stopped = False
        self.plane = DataPlane(self.table, KeyRing(), require_key=False)

    async def start(self) -> Running:
        self.lifecycle.seed()
        await self.table.load_all()
        self.lifecycle.refresh()
        return self

    async def infer(self, name: str, version: str | None = None, params: dict | None = None) -> dict:
        body = dict(ROW, parameters=params) if params else ROW
        payload, _ = await infer_rest(self.plane, name, version, json.dumps(body).encode(), None, None, (), 1 << 20)
        return json.loads(payload)

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.table.shadows.drain()
        await self.table.close()
        self.db.close()


@pytest.fixture
async def running(lifecycle_repo: Path, tmp_path: Path):
    r = await Running(lifecycle_repo, tmp_path / "driftline.db").start()
    yield r
    await r.stop()


def snapshot(r: Running, name: str) -> tuple[object, ...]:
    return (r.table.routes(name), r.lifecycle.deployments.aliases(name), sorted(r.table.loaded()[name]))


async def test_aliases_seed_from_config_route_requests_and_survive_a_restart(running, lifecycle_repo, tmp_path):
    assert (await running.infer("iris"))["model_version"] == "2"
    assert (await running.infer("iris", "champion"))["model_version"] == "2"
    assert (await running.infer("iris", "1"))["model_version"] == "1"
    await running.lifecycle.set_alias("iris", "champion", 1, "test", "why not")
    await running.lifecycle.set_alias("iris", "challenger", 2, "test")
    assert (await running.infer("iris"))["model_version"] == "1"
    assert (await running.infer("iris", "challenger"))["model_version"] == "2"
    with pytest.raises(ModelNotFound, match="no version or alias 'nope'"):
        await running.infer("iris", "nope")
    await running.stop()
    again = await Running(lifecycle_repo, tmp_path / "driftline.db").start()
    try:
        # The store wins over config.toml's champion = 2 after the first start.
        assert again.table.routes("iris").aliases == {"champion": 1, "challenger": 2}
        assert (await again.infer("iris"))["model_version"] == "1"
    finally:
        await again.stop()


async def test_alias_at_a_missing_version_is_refused_and_nothing_changes(running):
    before = snapshot(running, "iris")
    with pytest.raises(Conflict, match=r"version 7 of model 'iris' is not loaded; loaded versions: 1, 2"):
        await running.lifecycle.set_alias("iris", "champion", 7, "test")
    with pytest.raises(BadRequest, match="not a number"):
        await running.lifecycle.set_alias("iris", "3", 1, "test")
    assert snapshot(running, "iris") == before
    refused = running.audit.events("iris", action="alias_refused")
    assert refused
    assert "not loaded" in (refused[0].reason or "")


async def test_a_signature_change_under_an_alias_is_refused(running):
    before = snapshot(running, "sig")
    with pytest.raises(
        Conflict, match=r"signature changed incompatibly: input 'x' changed from FP32\[-1, 4\] to FP32\[-1, 5\]"
    ):
        await running.lifecycle.set_alias("sig", "champion", 2, "test")
    assert snapshot(running, "sig") == before
    assert (await running.infer("sig"))["model_version"] == "1"
    # A new alias has no clients yet: it may point anywhere.
    await running.lifecycle.set_alias("sig", "wide", 2, "test")
    with pytest.raises(Conflict, match="cannot answer model 'sig'"):
        await running.lifecycle.set_routing("sig", RoutingPolicy(split=Split({"1": 50, "2": 50}, parameter="u")), "t")


async def test_rollback_returns_to_the_previous_version_in_one_call(running):
    with pytest.raises(Conflict, match="has never moved"):
        await running.lifecycle.rollback("iris", "champion", "test")
    await running.lifecycle.set_alias("iris", "champion", 1, "test")
    result = await running.lifecycle.rollback("iris", "champion", "test", "bad numbers")
    assert msgspec.to_builtins(result) == {"model": "iris", "alias": "champion", "version": "2", "previous": "1"}
    assert (await running.infer("iris"))["model_version"] == "2"
    event = running.audit.events("iris", action="rollback")[0]
    assert (event.version_before, event.version_after, event.actor) == ("1", "2", "test")
    assert event.sha256 == running.table.loaded()["iris"][2].sha256
    with pytest.raises(ModelNotFound, match="no alias 'staging'"):
        await running.lifecycle.rollback("iris", "staging", "test")


async def test_routing_targets_must_resolve_to_loaded_versions(running):
    before = snapshot(running, "iris")
    with pytest.raises(Conflict, match="'challenger' of model 'iris' is neither a version nor an alias"):
        await running.lifecycle.set_routing("iris", RoutingPolicy(shadow=Shadow("challenger")), "t")
    with pytest.raises(Conflict, match="version 5 of model 'iris' is not loaded"):
        await running.lifecycle.set_routing("iris", RoutingPolicy(shadow=Shadow("5")), "t")
    assert snapshot(running, "iris") == before
    assert not running.audit.events("iris", action="routing_set")


async def test_split_routes_by_a_request_parameter(running):
    await running.lifecycle.set_routing(
        "iris", RoutingPolicy(split=Split({"1": 50, "2": 50}, parameter="user")), "test"
    )
    by_user = {}
    for i in range(40):
        user = f"user-{i}"
        first = (await running.infer("iris", params={"user": user}))["model_version"]
        assert (await running.infer("iris", params={"user": user}))["model_version"] == first
        by_user[user] = first
    assert set(by_user.values()) == {"1", "2"}
    # Pinned requests ignore the split.
    assert (await running.infer("iris", "1", params={"user": "user-0"}))["model_version"] == "1"


async def test_shadow_then_rule_gated_approval_then_promotion(running):
    lc, pr = running.lifecycle, running.proposals
    proposal = await pr.propose("iris", 1, "champion", ApprovalRule(min_agreement=0.5, min_requests=10), "op")
    with pytest.raises(Conflict, match=r"cannot be approved yet: shadow of version 1 beside version 2: 0 compared"):
        await pr.approve(proposal.id, "admin")
    with pytest.raises(Conflict, match="must be approved before it is promoted"):
        await pr.promote(proposal.id, "admin")
    await lc.set_routing("iris", RoutingPolicy(shadow=Shadow("1")), "op")
    for _ in range(12):
        assert (await running.infer("iris"))["model_version"] == "2"  # the caller only ever sees the primary
    await running.table.shadows.drain()
    pair = running.table.shadows.pairs("iris")[0]
    assert (pair.primary, pair.shadow, pair.requests, pair.shadow_errors) == (2, 1, 12, 0)
    assert pair.compared_rows == 24
    assert pair.agreement is not None
    # The same figures on /metrics, as counters (agreement = agreeing / compared over any range).
    metrics = CollectorRegistry()
    metrics.register(LifecycleCollector(running.table))
    labels = {"model": "iris", "primary_version": "2", "shadow_version": "1"}
    assert metrics.get_sample_value("driftline_shadow_requests_total", labels) == 12
    assert metrics.get_sample_value("driftline_shadow_compared_rows_total", labels) == 24
    assert metrics.get_sample_value("driftline_shadow_agreeing_rows_total", labels) == pair.agreeing_rows
    assert metrics.get_sample_value("driftline_shadow_errors_total", labels) == 0
    assert metrics.get_sample_value("driftline_alias_version", {"model": "iris", "alias": "champion"}) == 2
    approved = await pr.approve(proposal.id, "admin", "looks fine")
    assert approved.state == "approved"
    assert approved.decided_by == "admin"
    promoted = await pr.promote(proposal.id, "admin")
    assert promoted.state == "promoted"
    assert (await running.infer("iris"))["model_version"] == "1"
    assert metrics.get_sample_value("driftline_alias_version", {"model": "iris", "alias": "champion"}) == 1
    with pytest.raises(Conflict, match="is promoted"):
        await pr.reject(proposal.id, "admin")
    actions = [e.action for e in reversed(running.audit.events("iris"))]
    for action in ("propose", "approve_refused", "routing_set", "approve", "alias_set", "promote"):
        assert action in actions, action


async def test_a_failing_shadow_never_touches_the_caller(running):
    await running.lifecycle.set_alias("sig", "wide", 2, "t")
    # Version 2 takes 5 features: every shadow copy of a 4-feature request fails, on the side.
    await running.lifecycle.set_routing("sig", RoutingPolicy(shadow=Shadow("wide")), "t")
    for _ in range(5):
        assert (await running.infer("sig"))["model_version"] == "1"
    await running.table.shadows.drain()
    pair = running.table.shadows.pairs("sig")[0]
    assert pair.shadow_errors == 5
    assert "x" in (pair.last_error or "")


async def test_load_and_unload_one_version(running, lifecycle_repo, iris_weights):
    w, b = iris_weights
    write_config(lifecycle_repo / "iris", 'max_batch_size = 16\nversion_policy = { policy = "latest", latest = 1 }\n')
    build_classifier_onnx(lifecycle_repo / "iris" / "3" / "model.onnx", w * 3, b)
    loaded = await running.table.load("iris")
    # Policy latest 1 picks 3; 2 stays because champion points at it; 1 is no longer wanted.
    assert loaded == [2, 3]
    assert await running.lifecycle.load_version("iris", 1, "op") == [1, 2, 3]
    with pytest.raises(Conflict, match="in use by 'champion'"):
        await running.lifecycle.unload_version("iris", 2, "op")
    with pytest.raises(Conflict, match="selected by its version_policy"):
        await running.lifecycle.unload_version("iris", 3, "op")
    assert await running.lifecycle.unload_version("iris", 1, "op") == [2, 3]
    with pytest.raises(ModelNotFound, match="no version 9 in the repository"):
        await running.lifecycle.load_version("iris", 9, "op")


async def test_a_corrupt_new_version_never_serves_and_the_old_ones_keep_going(running, lifecycle_repo):
    folder = lifecycle_repo / "iris" / "3"
    folder.mkdir()
    (folder / "model.onnx").write_bytes((lifecycle_repo / "iris" / "1" / "model.onnx").read_bytes()[:100])
    assert await running.table.load("iris") == [1, 2]
    assert 3 in running.table.failures("iris")
    assert (await running.infer("iris"))["model_version"] == "2"
    with pytest.raises(ModelNotReady, match="failed to load"):
        await running.infer("iris", "3")
    with pytest.raises(Conflict, match="it failed to load"):
        await running.lifecycle.set_alias("iris", "champion", 3, "t")
    failed = running.audit.events("iris", action="load_failed")
    assert failed[0].version_after == "3"
    status = msgspec.to_builtins(model_status(running.lifecycle, running.proposals.store, "iris"))
    assert [v["state"] for v in status["versions"]] == ["READY", "READY", "FAILED"]


async def test_requests_in_flight_finish_on_the_version_they_started_on(running, lifecycle_repo, iris_weights):
    w, b = iris_weights
    write_config(lifecycle_repo / "mlp", "max_batch_size = 32\n")
    build_classifier_onnx(lifecycle_repo / "iris" / "3" / "model.onnx", w, b)
    write_config(lifecycle_repo / "iris", 'max_batch_size = 16\nversion_policy = { policy = "latest", latest = 1 }\n')
    await running.lifecycle.delete_alias("iris", "champion", "t")
    tasks = [asyncio.create_task(running.infer("iris", "1")) for _ in range(200)]
    await asyncio.sleep(0)  # every request is queued on version 1 now
    assert await running.table.load("iris") == [3]  # 1 and 2 retire after draining
    results = await asyncio.gather(*tasks)
    assert {r["model_version"] for r in results} == {"1"}
    assert (await running.infer("iris"))["model_version"] == "3"
    unloads = {e.version_before for e in running.audit.events("iris", action="unload")}
    assert unloads == {"1", "2"}


async def test_shadow_totals_add_up_over_worker_processes_and_restarts(running):
    from driftline.serving.shadow import ShadowComparisons

    await running.lifecycle.set_routing("iris", RoutingPolicy(shadow=Shadow("1")), "t")
    for _ in range(6):
        await running.infer("iris")
    await running.table.shadows.drain()
    mine = running.lifecycle.shadow_pairs("iris")[0]
    assert (mine.primary, mine.shadow, mine.requests, mine.compared_rows) == (2, 1, 6, 12)
    # Another worker process (or an earlier run) wrote its own totals: they are summed, not overwritten.
    other = ShadowComparisons()
    pair = other.pair("iris", 2, 1)
    pair.requests, pair.compared_rows, pair.agreeing_rows = 4, 8, 8
    running.lifecycle.shadow_stats.save(other.process, other.changed())
    running.lifecycle.shadow_stats.save(other.process, [pair])  # writing the same totals twice counts them once
    total = running.lifecycle.shadow_pairs("iris")[0]
    assert (total.requests, total.compared_rows) == (10, 20)
    assert total.agreeing_rows == mine.agreeing_rows + 8


async def test_a_seeded_alias_at_a_missing_version_is_refused(lifecycle_repo, tmp_path):
    write_config(lifecycle_repo / "mlp", "max_batch_size = 32\naliases = { champion = 4 }\n")
    r = await Running(lifecycle_repo, tmp_path / "seed.db").start()
    try:
        assert "champion" not in r.table.routes("mlp").aliases
        refused = r.audit.events("mlp", action="alias_refused")
        assert "points it at version 4, which is not in the repository" in (refused[0].reason or "")
        assert (await r.infer("iris"))["model_version"] == "2"  # everything else started
    finally:
        await r.stop()


async def _blocked_on_the_lock(*coros) -> list[asyncio.Task]:
    """Start lifecycle calls while the lifecycle's lock is held, so they reach it together (a real race)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    for _ in range(20):  # bounded: each call reaches the lock within a few loop turns
        await asyncio.sleep(0)
    return tasks


async def test_of_two_concurrent_promotes_one_wins_and_the_other_is_refused(running):
    lc, pr = running.lifecycle, running.proposals
    proposal = await pr.propose("iris", 1, "champion", None, "op")
    await pr.approve(proposal.id, "admin")
    async with lc.lock:
        tasks = await _blocked_on_the_lock(pr.promote(proposal.id, "a"), pr.promote(proposal.id, "b"))
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    assert sorted(type(x).__name__ for x in results) == ["Conflict", "Proposal"]
    assert "decided meanwhile" in str(next(x for x in results if isinstance(x, Conflict)))
    assert len(running.audit.events("iris", action="promote")) == 1
    assert len(running.audit.events("iris", action="promote_refused")) == 1
    assert (await running.infer("iris"))["model_version"] == "1"


async def test_a_promote_that_loses_to_a_reject_leaves_the_alias_alone(running):
    lc, pr = running.lifecycle, running.proposals
    proposal = await pr.propose("iris", 1, "champion", None, "op")
    await pr.approve(proposal.id, "admin")
    before = snapshot(running, "iris")
    async with lc.lock:
        (promote,) = await _blocked_on_the_lock(pr.promote(proposal.id, "admin"))
        await pr.reject(proposal.id, "other-admin")  # reject takes no lock: it lands while promote waits
    with pytest.raises(Conflict, match=f"proposal {proposal.id} is rejected"):
        await asyncio.wait_for(promote, 30)
    assert snapshot(running, "iris") == before
    assert not running.audit.events("iris", action="promote")
    assert (await running.infer("iris"))["model_version"] == "2"
    with pytest.raises(Conflict, match="is rejected"):  # and later, plainly
        await pr.promote(proposal.id, "admin")


async def test_a_promote_after_the_alias_moved_since_approval_is_refused(running):
    lc, pr = running.lifecycle, running.proposals
    proposal = await pr.propose("iris", 1, "challenger", None, "op")
    await pr.approve(proposal.id, "admin")
    await asyncio.sleep(0.01)  # store timestamps have millisecond resolution
    await lc.set_alias("iris", "challenger", 2, "op")
    with pytest.raises(Conflict, match="moved to version 2 after proposal"):
        await pr.promote(proposal.id, "admin")
    assert running.table.routes("iris").aliases["challenger"] == 2
    assert pr.store.proposal(proposal.id).state == "approved"
    assert not running.audit.events("iris", action="promote")


async def test_a_missing_proposal_is_a_proposal_not_found(running):
    assert issubclass(ProposalNotFound, NotFound)
    assert issubclass(ModelNotFound, NotFound)
    assert ProposalNotFound.http_status == NotFound.http_status == 404
    pr = running.proposals
    for step in (pr.approve, pr.promote, pr.reject):
        with pytest.raises(ProposalNotFound, match=r"^no proposal 999$"):
            await step(999, "admin")
    with pytest.raises(ProposalNotFound, match=r"^no proposal 999$"):
        pr.get(999)


async def test_status_answers_the_admin_apis_fields_in_order(running, lifecycle_repo):
    folder = lifecycle_repo / "iris" / "3"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not a model")
    await running.table.load("iris")
    await running.proposals.propose("iris", 1, "champion", ApprovalRule(min_requests=1), "op")
    status = json.loads(msgspec.json.encode(model_status(running.lifecycle, running.proposals.store, "iris")))
    assert list(status) == [
        "name",
        "state",
        "error",
        "default_alias",
        "default_version",
        "versions",
        "aliases",
        "routing",
        "shadow",
        "proposals",
    ]
    assert (status["error"], status["default_version"], status["routing"], status["shadow"]) == (None, "2", {}, [])
    ready, _, failed = status["versions"]
    # A field that does not apply to the version's state is absent, not null.
    assert list(ready) == ["version", "state", "sha256", "backend", "lineage"]
    assert list(failed) == ["version", "state", "reason"]
    assert list(status["aliases"]["champion"]) == ["version", "previous", "updated_at"]
    (proposal,) = status["proposals"]
    assert proposal["rule"] == {"min_agreement": None, "min_requests": 1, "max_mean_abs_diff": None}
    with pytest.raises(ModelNotFound, match="model 'nope' not found"):
        model_status(running.lifecycle, running.proposals.store, "nope")
