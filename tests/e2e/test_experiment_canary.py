"""A canary experiment end to end on a real server: 30% of simulated users meet the challenger, whose users convert
more often; the promotion rule refuses approval before the evidence is in and allows it after, and the
promotion record keeps the numbers. On a second model a challenger whose error rate is raised (a real onnxruntime
failure on some inputs) is stopped by its guardrail: its traffic goes to 0, on record and by webhook.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.e2e.conftest import start_server
from tests.experiments.flaky import build_flaky_classifier_onnx
from tests.helpers import ADMIN_KEY, write_config, write_server_config

from driftline.repository.demo import build_classifier_onnx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROW = [5.1, 3.5, 1.4, 0.2]
BAD_ROW = [7.5, 3.0, 6.0, 2.0]  # the flaky challenger fails on any batch with a first feature above 7
CONVERSION = {1: 0.10, 2: 0.22}  # the challenger's users convert more often
USERS = 3000
MODEL_CONFIG = 'max_batch_size = 16\nversion_policy = { policy = "all" }\naliases = { champion = 1 }\n'


def _spec(name: str, **extra: object) -> dict:
    """Champion (version 1) against version 2 at 30%: conversion the primary, the error rate its guardrail."""
    return {
        "name": name,
        "arms": [{"name": "champion", "target": "champion"}, {"name": "challenger", "target": "2"}],
        "design": {"canary": 30},
        "metrics": [
            {"name": "conversion", "kind": "kpi", "direction": "increase"},
            {"name": "errors", "kind": "error_rate", "direction": "decrease"},
        ],
        "primary": "conversion",
        "guardrails": ["errors"],
        **extra,
    }


CONVERSION_SPEC = _spec(
    "checkout-v2",
    rules=[
        {"metric": "conversion", "require": "better"},
        {"metric": "errors", "require": "not_worse", "margin": 0.01},
    ],
    min_sample=200,
)
GUARDRAIL_SPEC = _spec("risky-v2", min_sample=50, guardrail_stop=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights, receiver):
    root = tmp_path_factory.mktemp("experiment-canary")
    repo = root / "models"
    w, b = iris_weights
    for name in ("shop", "risky"):
        build_classifier_onnx(repo / name / "1" / "model.onnx", w, b)
        write_config(repo / name, MODEL_CONFIG)
    build_classifier_onnx(repo / "shop" / "2" / "model.onnx", w * 2, b)
    build_flaky_classifier_onnx(repo / "risky" / "2" / "model.onnx", w, b, fail_above=7.0)
    config = write_server_config(
        root / "server.toml",
        "[capture]\nenabled = true\nsegment_seconds = 1\n"
        "[experiments]\ncheck_interval_s = 0.5\n"
        f'[alerts]\nwebhooks = ["{receiver.url}"]\n',
    )
    srv = start_server(repo, root, extra_args=["--config", str(config)])
    yield srv
    srv.stop()


def _visit(client: httpx.Client, model: str, uid: str, row: list[float]) -> int | None:
    body = {"id": uid, "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": row}]}
    answer = client.post(f"/v2/models/{model}/infer", json=body)
    return int(answer.json()["model_version"]) if answer.status_code == 200 else None


def _users(server, model: str, start: int, count: int, row: list[float], seed: int) -> dict[int, int]:
    """``count`` simulated users, each one request; those who convert post a KPI event. Returns users per version."""
    rng = random.Random(seed)
    draws = [rng.random() for _ in range(count)]
    uids = [f"{model}-user-{i}" for i in range(start, start + count)]
    with httpx.Client(base_url=server.url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(lambda uid: _visit(client, model, uid, row), uids))
        events = [
            {"id": uid, "name": "conversion", "value": 1}
            for uid, version, draw in zip(uids, versions, draws, strict=True)
            if version is not None and draw < CONVERSION[version]
        ]
        for at in range(0, len(events), 500):
            posted = client.post(f"/v1/models/{model}/kpi", json={"kpi": events[at : at + 500]}, headers=HEADERS)
            assert posted.status_code == 200, posted.text
    served: dict[int, int] = {}
    for version in versions:
        if version is not None:
            served[version] = served.get(version, 0) + 1
    return served


def _report(server, model: str, eid: int) -> dict:
    answer = httpx.get(f"{server.url}/v1/admin/models/{model}/experiments/{eid}", headers=HEADERS, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _metric(report: dict, name: str) -> dict:
    return next(m for m in report["metrics"] if m["name"] == name)


def _settled_report(server, model: str, eid: int, units: int) -> dict:
    """The report once the capture writer has written at least ``units`` units of the conversion metric."""
    report: dict = {}
    for _ in range(60):
        report = _report(server, model, eid)
        if sum(a["n"] for a in _metric(report, "conversion")["arms"]) >= units:
            return report
        time.sleep(0.5)
    pytest.fail(f"the captured units never reached {units}: {report}")


def test_canary_experiment_reaches_a_decision_and_gates_the_promotion(server):
    created = httpx.post(
        f"{server.url}/v1/admin/models/shop/experiments", json=CONVERSION_SPEC, headers=HEADERS, timeout=30
    )
    assert created.status_code == 201, created.text
    eid = created.json()["id"]
    routing = httpx.get(f"{server.url}/v1/admin/models/shop/routing", headers=HEADERS, timeout=10).json()
    assert routing["canary"] == {"target": "2", "percent": 30.0}, routing

    proposal = httpx.post(
        f"{server.url}/v1/admin/models/shop/proposals",
        json={"version": 2, "alias": "champion"},
        headers=HEADERS,
        timeout=10,
    )
    assert proposal.status_code in (200, 201), proposal.text
    pid = proposal.json()["id"]
    early = httpx.post(f"{server.url}/v1/admin/proposals/{pid}/approve", headers=HEADERS, timeout=60)
    assert early.status_code == 409, early.text
    assert "conversion" in early.json()["error"], early.text

    served = _users(server, "shop", 0, USERS, ROW, seed=1)
    assert set(served) == {1, 2}
    # 30% of the users met the challenger (a binomial 99.99% band around 900 of 3000).
    assert 780 < served[2] < 1020, served

    report = _settled_report(server, "shop", eid, USERS)
    assert report["assignments"] == {"champion": served[1], "challenger": served[2]}
    assert report["sample_ratio"]["flagged"] is False, report["sample_ratio"]
    conversion = _metric(report, "conversion")["comparisons"][0]
    assert conversion["verdict"] == "better", conversion
    # The true difference (0.12) is inside the confidence sequence, and the lower bound is above 0.
    assert 0 < conversion["absolute"]["lower"] < CONVERSION[2] - CONVERSION[1] < conversion["absolute"]["upper"]
    assert report["ready"] is True, report["rules"]
    assert all(rule["passed"] for rule in report["rules"]), report["rules"]

    approved = httpx.post(f"{server.url}/v1/admin/proposals/{pid}/approve", headers=HEADERS, timeout=60)
    assert approved.status_code == 200, approved.text
    promoted = httpx.post(f"{server.url}/v1/admin/proposals/{pid}/promote", headers=HEADERS, timeout=60)
    assert promoted.status_code == 200, promoted.text
    record = promoted.json()
    assert record["state"] == "promoted"
    assert record["decided_by"] == "key:admin"
    assert record["evidence"]["experiment"] == eid, record["evidence"]
    # The promotion concluded the experiment: stopped, its canary gone, version 2 answers everything.
    concluded = _report(server, "shop", eid)["experiment"]
    assert (concluded["state"], concluded["stopped_by"]) == ("stopped", "key:admin"), concluded
    routing = httpx.get(f"{server.url}/v1/admin/models/shop/routing", headers=HEADERS, timeout=10).json()
    assert not routing.get("canary"), routing
    html = httpx.get(f"{server.url}/v1/admin/models/shop/experiments/{eid}?format=html", headers=HEADERS, timeout=60)
    assert html.status_code == 200, html.text
    assert html.headers["content-type"].startswith("text/html")
    assert "conversion" in html.text


def test_guardrail_stops_a_challenger_whose_error_rate_rose(server, receiver):
    created = httpx.post(
        f"{server.url}/v1/admin/models/risky/experiments", json=GUARDRAIL_SPEC, headers=HEADERS, timeout=30
    )
    assert created.status_code == 201, created.text
    eid = created.json()["id"]
    _users(server, "risky", 0, 300, ROW, seed=2)  # healthy traffic first: no stop
    assert _report(server, "risky", eid)["experiment"]["state"] == "running"
    # Now inputs the challenger fails on: its error rate rises to 1, the champion's stays 0.
    _users(server, "risky", 300, 400, BAD_ROW, seed=3)
    state: dict = {}
    for _ in range(60):
        state = _report(server, "risky", eid)
        if state["experiment"]["state"] == "stopped":
            break
        time.sleep(0.5)
    assert state["experiment"]["state"] == "stopped", state
    reason = state["experiment"]["stop_reason"]
    assert "guardrail" in reason, reason
    assert "errors" in reason, reason
    assert "errors" in state["breached"]
    routing = httpx.get(f"{server.url}/v1/admin/models/risky/routing", headers=HEADERS, timeout=10).json()
    assert "canary" not in routing or not routing["canary"], routing
    # Every request now meets the champion.
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert {_visit(client, "risky", f"after-{i}", ROW) for i in range(50)} == {1}
    audit = httpx.get(f"{server.url}/v1/admin/audit", params={"model": "risky"}, headers=HEADERS, timeout=10).json()
    assert any(e["action"] == "experiment_guardrail_stop" for e in audit), audit
    events = [e for e in receiver.wait_for(1) if e.get("kind") == "experiment_guardrail"]
    assert events, receiver.bodies
    assert (events[0]["model"], events[0]["metric"]) == ("risky", "errors"), events
