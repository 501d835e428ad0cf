"""Experiments on a real server: created, listed, reported (JSON and HTML) and stopped over the admin API with the
audit rows; bad input refused naming the field with the routing and the store as before; the promotion gate
refusing an approval, then allowing it once the experiment's report is ready; the guardrail stop (labels that make
the challenger's accuracy collapse): routing back to the control, audited, a webhook at a real local receiver."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_test_repository, write_server_config

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
IRIS = """
aliases = { champion = 1, challenger = 2 }
[capture]
enabled = true
[quality]
task = "classification"
label_output = "label"
classes = [0, 1, 2]
"""
ERRORS = {"name": "errors", "kind": "error_rate", "direction": "decrease"}
ACCURACY = {"name": "accuracy", "kind": "quality", "direction": "increase", "quality": "accuracy"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights, receiver):
    workdir = tmp_path_factory.mktemp("experiments")
    settings = (
        f'[capture]\ndirectory = "{workdir / "captures"}"\nsegment_seconds = 0.2\n'
        "[experiments]\ncheck_interval_s = 0.3\n"
        f'[alerts]\nwebhooks = ["{receiver.url}"]\nbackoff_s = 0.05\n'
    )
    config = write_server_config(workdir / "server.toml", settings)
    root = build_test_repository(workdir / "models", iris_weights)
    with (root / "iris" / "config.toml").open("a") as f:
        f.write(IRIS)
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


def admin(server, method: str, path: str, body: object = None, headers: dict | None = None) -> httpx.Response:
    url = f"{server.url}/v1/admin{path}"
    return httpx.request(method, url, json=body, headers={**HEADERS, **(headers or {})}, timeout=30)


def experiment(name: str = "checkout", **fields: object) -> dict:
    return {
        "name": name,
        "arms": [{"name": "control", "target": "champion"}, {"name": "treatment", "target": "challenger"}],
        "design": {"canary": 50},
        "metrics": [ERRORS],
        "primary": "errors",
        **fields,
    }


def routing(server) -> dict:
    return admin(server, "GET", "/models/iris/routing").json()


def stop_all(server) -> None:
    for e in admin(server, "GET", "/models/iris/experiments?state=running").json():
        assert admin(server, "POST", f"/models/iris/experiments/{e['id']}/stop").status_code == 200


def predict(server, prefix: str, count: int) -> dict[str, tuple[int, int]]:
    """``count`` unpinned one-row requests with ids prefix-0..; the version that answered each, and its label."""
    rng = np.random.default_rng(3)
    served = {}
    with httpx.Client(base_url=server.url, timeout=10) as client:  # one connection: a new one each costs more
        for i in range(count):
            body = {
                "id": f"{prefix}-{i}",
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": rng.normal(size=4).tolist()}],
            }
            r = client.post("/v2/models/iris/infer", json=body)
            assert r.status_code == 200, r.text
            answer = r.json()
            label = next(o for o in answer["outputs"] if o["name"] == "label")["data"][0]
            served[f"{prefix}-{i}"] = (int(answer["model_version"]), int(label))
    return served


def label(server, served: dict[str, tuple[int, int]], wrong: Callable[[int, int], bool]) -> None:
    """Label every request once it is captured (segments are written every 0.2 s): with the answer it got, or a
    wrong class where ``wrong(i, version)`` (the i-th request)."""
    deadline = time.monotonic() + 20
    for _ in range(200):
        r = httpx.get(f"{server.url}/v1/models/iris/captures", params={"format": "jsonl"}, headers=HEADERS, timeout=10)
        captured = {json.loads(line)["request_id"] for line in r.text.splitlines()}
        if set(served) <= captured or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    feedback = [
        {"id": request_id, "target": (answer + 1) % 3 if wrong(i, version) else answer}
        for i, (request_id, (version, answer)) in enumerate(served.items())
    ]
    posted = httpx.post(
        f"{server.url}/v1/models/iris/feedback", json={"feedback": feedback}, headers=HEADERS, timeout=10
    )
    assert posted.status_code == 200, posted.text


def test_create_list_report_stop_and_the_audit_rows(server):
    created = admin(server, "POST", "/models/iris/experiments", experiment(reason="try it"))
    assert created.status_code == 201, created.text
    e = created.json()
    assert e["versions"] == {"control": 1, "treatment": 2}
    assert e["state"] == "running"
    assert routing(server) == {"canary": {"target": "2", "percent": 50.0}}
    listed = admin(server, "GET", "/models/iris/experiments").json()
    assert [x["id"] for x in listed] == [e["id"]]
    assert admin(server, "GET", "/models/iris/experiments?state=stopped").json() == []

    report = admin(server, "GET", f"/models/iris/experiments/{e['id']}")
    assert report.status_code == 200, report.text
    assert report.headers["content-type"].startswith("application/json")
    body = report.json()
    assert body["experiment"]["id"] == e["id"]
    assert [m["name"] for m in body["metrics"]] == ["errors"]
    assert body["ready"] is False
    for html in (
        admin(server, "GET", f"/models/iris/experiments/{e['id']}?format=html"),
        admin(server, "GET", f"/models/iris/experiments/{e['id']}", headers={"Accept": "text/html"}),
    ):
        assert html.status_code == 200, html.text
        assert html.headers["content-type"].startswith("text/html")
        assert "checkout" in html.text

    stopped = admin(server, "POST", f"/models/iris/experiments/{e['id']}/stop", {"reason": "done"})
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["state"] == "stopped"
    assert stopped.json()["stop_reason"] == "done"
    assert routing(server) == {}
    again = admin(server, "POST", f"/models/iris/experiments/{e['id']}/stop")
    assert again.status_code == 409
    assert "stopped already" in again.json()["error"]
    audit = admin(server, "GET", "/audit?model=iris&limit=50").json()
    actions = [(a["action"], a["actor"]) for a in audit if a["action"].startswith("experiment_")]
    assert actions == [("experiment_stopped", "key:admin"), ("experiment_started", "key:admin")]
    assert audit[-1]["reason"] is not None


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({**experiment(), "colour": "red"}, 400, "colour"),
        (experiment(arms=[{"name": "control", "target": "1"}]), 400, "arms must list 2..8 arms"),
        (experiment(design={"canary": 150}), 400, "design.canary must be a percent"),
        (
            experiment(arms=[{"name": "control", "target": "1"}, {"name": "t", "target": "7"}]),
            409,
            "arms[1].target '7'",
        ),
        (experiment(arms=[{"name": "control", "target": "2"}, {"name": "t", "target": "1"}]), 409, "arms[0].target"),
        (
            experiment(
                design={"shadow": 100}, metrics=[{"name": "c", "kind": "kpi", "direction": "increase"}], primary="c"
            ),
            400,
            "metrics[0] 'c'",
        ),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_nothing_changes(server, body, status, words):
    stop_all(server)
    before = (routing(server), admin(server, "GET", "/models/iris/experiments").json())
    r = admin(server, "POST", "/models/iris/experiments", body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert (routing(server), admin(server, "GET", "/models/iris/experiments").json()) == before


def test_bad_paths_queries_and_keys(server):
    assert admin(server, "POST", "/models/nope/experiments", experiment()).status_code == 404
    assert admin(server, "GET", "/models/nope/experiments").status_code == 404
    assert admin(server, "GET", "/models/iris/experiments/999999").status_code == 404
    assert admin(server, "GET", f"/models/iris/experiments/{2**60}").status_code == 400
    assert admin(server, "GET", "/models/iris/experiments/0").status_code == 400
    bad = admin(server, "GET", "/models/iris/experiments?state=paused")
    assert bad.status_code == 400
    assert "state" in bad.json()["error"]
    created = admin(server, "POST", "/models/iris/experiments", experiment("keys")).json()
    bad = admin(server, "GET", f"/models/iris/experiments/{created['id']}?format=pdf")
    assert bad.status_code == 400
    assert "format" in bad.json()["error"]
    assert httpx.get(f"{server.url}/v1/admin/models/iris/experiments", timeout=10).status_code == 401
    key = admin(server, "POST", "/keys", {"name": "watcher", "role": "viewer"}).json()["key"]
    viewer = {"Authorization": f"Bearer {key}"}
    url = f"{server.url}/v1/admin/models/iris/experiments"
    assert httpx.get(url, headers=viewer, timeout=10).status_code == 200
    assert httpx.post(url, json=experiment("v"), headers=viewer, timeout=10).status_code == 403
    assert httpx.post(f"{url}/{created['id']}/stop", headers=viewer, timeout=10).status_code == 403
    stop_all(server)


def test_the_gate_refuses_approval_until_the_report_is_ready_then_keeps_its_numbers(server):
    stop_all(server)
    # Accuracy from labels: units are captured rows, exact in time (the traffic counts are per whole minute).
    rules = [{"metric": "accuracy", "require": "not_worse", "margin": 0.5}]
    body = experiment("gate", metrics=[ERRORS, ACCURACY], rules=rules, min_sample=20)
    e = admin(server, "POST", "/models/iris/experiments", body).json()
    proposal = admin(server, "POST", "/models/iris/proposals", {"version": 2, "alias": "champion"}).json()
    refused = admin(server, "POST", f"/proposals/{proposal['id']}/approve")
    assert refused.status_code == 409, refused.text
    assert f"experiment {e['id']} 'gate'" in refused.json()["error"]
    assert "needs 20, has 0" in refused.json()["error"]
    assert admin(server, "GET", "/audit?action=approve_refused&limit=1").json()[0]["model"] == "iris"

    served = predict(server, "gate", 480)
    assert {v for v, _ in served.values()} == {1, 2}
    label(server, served, lambda i, _: i % 4 == 0)  # both versions 75% right: the same, with some variance
    approved = admin(server, "POST", f"/proposals/{proposal['id']}/approve")
    assert approved.status_code == 200, approved.text
    record = approved.json()["evidence"]
    assert record["experiment"] == e["id"]
    assert record["ready"] is True
    assert record["approved_by"] == "key:admin"
    assert [m["name"] for m in record["metrics"]] == ["errors", "accuracy"]
    assert approved.json()["decided_by"] == "key:admin"
    status = admin(server, "GET", f"/proposals/{proposal['id']}").json()
    assert status["evidence"] == record
    assert "rule_evidence" in status
    admin(server, "POST", f"/proposals/{proposal['id']}/reject")
    stop_all(server)


def test_a_breached_guardrail_stops_the_challenger_audits_and_tells_the_webhook(server, receiver):
    stop_all(server)
    body = experiment(
        "guarded", metrics=[ERRORS, ACCURACY], guardrails=["accuracy"], guardrail_stop=True, min_sample=10
    )
    e = admin(server, "POST", "/models/iris/experiments", body).json()
    served = predict(server, "guard", 200)
    assert {v for v, _ in served.values()} == {1, 2}
    # The control 75% right, the challenger 25%: significantly worse at once.
    label(server, served, lambda i, version: (i % 4 == 0) == (version == 1))

    events = receiver.wait_for(1, timeout=30)
    guardrail = [b for b in events if b.get("kind") == "experiment_guardrail"]
    assert guardrail, events
    event = guardrail[0]
    assert (event["model"], event["experiment"], event["metric"]) == ("iris", e["id"], "accuracy")
    assert event["report_url"] == f"{server.url}/v1/admin/models/iris/experiments/{e['id']}"
    assert routing(server) == {}  # the challenger's traffic is 0: every request meets the control
    assert {v for v, _ in predict(server, "after", 20).values()} == {1}
    stopped = admin(server, "GET", "/models/iris/experiments?state=stopped").json()
    assert stopped[0]["id"] == e["id"]
    assert stopped[0]["stopped_by"] == "system"
    assert stopped[0]["stop_reason"].startswith("guardrail accuracy: ")
    audit = admin(server, "GET", "/audit?action=experiment_guardrail_stop&limit=5").json()
    assert [(a["model"], a["actor"]) for a in audit] == [("iris", "system")]
