"""The admin API and `driftline models ...` against a real server: keys and roles, aliases, canary, sticky A/B,
shadow, propose -> approve -> promote -> rollback, the audit log, and refusals that leave the state as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from tests.e2e.conftest import Server, start_server
from tests.helpers import build_test_repository, write_config

from driftline.security.keys import hash_key

pytestmark = pytest.mark.e2e

KEYS = {role: f"dl_test_{role}_key" for role in ("viewer", "predictor", "operator", "admin")}
ROWS = {
    "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]
}


def auth(role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[role]}"}


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory, iris_weights):
    tmp = tmp_path_factory.mktemp("admin")
    root = build_test_repository(tmp / "models", iris_weights)
    write_config(
        root / "iris", 'max_batch_size = 16\nversion_policy = { policy = "all" }\naliases = { champion = 2 }\n'
    )
    config = tmp / "server.toml"
    lines = ["[auth]", "require_for_inference = true"]
    for role, key in KEYS.items():
        lines += ["[[auth.keys]]", f'name = "{role}"', f'role = "{role}"', f'sha256 = "{hash_key(key)}"']
    config.write_text("\n".join(lines) + "\n")
    server = start_server(root, tmp, extra_args=["--config", str(config)])
    yield server
    server.stop()


def cli(server: Server, *args: str, key: str = "admin") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRIFTLINE_URL": server.url, "DRIFTLINE_API_KEY": KEYS[key]}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "models", *args], env=env, capture_output=True, text=True, timeout=60
    )


# One client for every inference call: httpx.post builds a client (and its TLS context) per call, which made the
# 600 requests of the routing test cost 30 s instead of 2.
_CLIENT = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_client():
    yield
    _CLIENT.close()


def infer(server: Server, path: str = "/v2/models/iris/infer", role: str = "predictor", **kw) -> httpx.Response:
    return _CLIENT.post(
        f"{server.url}{path}", json=kw.pop("body", ROWS), headers={**auth(role), **kw.pop("headers", {})}
    )


def test_keys_and_roles(admin_server):
    url = admin_server.url
    r = httpx.get(f"{url}/v1/admin/models", timeout=10)
    assert r.status_code == 401
    assert "API key is required" in r.json()["error"]
    r = httpx.get(f"{url}/v1/admin/models", headers={"x-api-key": "dl_nope"}, timeout=10)
    assert r.status_code == 401
    assert "not known" in r.json()["error"]
    assert httpx.get(f"{url}/v1/admin/models", headers=auth("viewer"), timeout=10).status_code == 200
    r = httpx.put(
        f"{url}/v1/admin/models/iris/aliases/champion", json={"version": 1}, headers=auth("operator"), timeout=10
    )
    assert r.status_code == 403
    assert "needs 'admin'" in r.json()["error"]
    # Inference needs a predictor key here (require_for_inference), on the fast path and for every version form.
    assert httpx.post(f"{url}/v2/models/iris/infer", json=ROWS, timeout=10).status_code == 401
    assert infer(admin_server, role="viewer").status_code == 403
    assert infer(admin_server).status_code == 200
    assert infer(admin_server, "/v2/models/iris/versions/champion/infer", role="admin").json()["model_version"] == "2"
    # Triton's repository API changes the serving state: operators only once keys exist.
    assert httpx.post(f"{url}/v2/repository/models/iris/load", timeout=30).status_code == 401
    assert httpx.post(f"{url}/v2/repository/models/iris/load", headers=auth("operator"), timeout=30).status_code == 200
    r = httpx.post(f"{url}/v1/admin/models/iris/load", json={}, headers=auth("operator"), timeout=30)
    assert r.json() == {"name": "iris", "versions": ["1", "2"], "failed": {}}
    # Jobs and drift reports need a key once the server has keys: viewer to read, operator to submit.
    assert httpx.get(f"{url}/v1/jobs", timeout=10).status_code == 401
    assert httpx.get(f"{url}/v1/jobs", headers=auth("viewer"), timeout=10).status_code == 200
    r = httpx.post(
        f"{url}/v1/jobs", json={"model": "iris", "inputs": ["x.csv"], "output": "o"}, headers=auth("predictor")
    )
    assert r.status_code == 403
    assert httpx.get(f"{url}/v1/models/iris/drift", timeout=10).status_code == 401
    # Keys created over the API work at once and are stored hashed; unknown roles are refused.
    r = httpx.post(f"{url}/v1/admin/keys", json={"name": "ci", "role": "root"}, headers=auth("admin"), timeout=10)
    assert r.status_code == 400
    assert "unknown role 'root'" in r.json()["error"]
    new = httpx.post(
        f"{url}/v1/admin/keys", json={"name": "ci", "role": "predictor"}, headers=auth("admin"), timeout=10
    )
    key = new.json()["key"]
    assert (
        httpx.post(f"{url}/v2/models/iris/infer", json=ROWS, headers={"x-api-key": key}, timeout=10).status_code == 200
    )
    listed = httpx.get(f"{url}/v1/admin/keys", headers=auth("admin"), timeout=10).text
    assert key not in listed
    assert '"ci"' in listed
    assert httpx.delete(f"{url}/v1/admin/keys/ci", headers=auth("admin"), timeout=10).status_code == 200
    assert (
        httpx.post(f"{url}/v2/models/iris/infer", json=ROWS, headers={"x-api-key": key}, timeout=10).status_code == 401
    )


def test_bad_input_is_refused_and_the_state_stays(admin_server):
    url = admin_server.url
    before = httpx.get(f"{url}/v1/admin/models/iris", headers=auth("viewer"), timeout=10).json()
    cases = [
        (
            "PUT",
            "/v1/admin/models/iris/routing",
            {"split": {"parameter": "u", "weights": {"1": 60, "2": 30}}},
            400,
            "add up to 100",
        ),
        ("PUT", "/v1/admin/models/iris/routing", {"canary": {"target": "2", "percent": 101}}, 400, "canary.percent"),
        (
            "PUT",
            "/v1/admin/models/iris/routing",
            {"canary": {"target": "staging", "percent": 5}},
            409,
            "neither a version nor an alias",
        ),
        (
            "PUT",
            "/v1/admin/models/iris/aliases/champion",
            {"version": 9},
            409,
            "version 9 of model 'iris' is not loaded",
        ),
        ("PUT", "/v1/admin/models/iris/aliases/champion", {"version": "two"}, 400, "Expected `int`"),
        ("PUT", "/v1/admin/models/iris/aliases/champion", {"versoin": 1}, 400, "versoin"),
        ("POST", "/v1/admin/models/nope/proposals", {"version": 1}, 404, "'nope'"),
        ("POST", "/v1/admin/models/iris/load", {"version": 9}, 404, "no version 9 in the repository"),
        ("POST", "/v1/admin/models/iris/unload", {"version": 2}, 409, "in use by 'champion'"),
        ("POST", "/v1/admin/models/iris/unload", {"version": 1}, 409, "selected by its version_policy"),
        ("POST", "/v1/admin/models/iris/unload", {}, 400, "'version' is required"),
        ("POST", "/v1/admin/proposals/999/approve", {}, 404, "no proposal 999"),
        ("POST", "/v1/admin/models/iris/aliases/champion/rollback", {}, 409, "never moved"),
        ("POST", "/v1/admin/models/iris/proposals", {"version": 1, "rule": {"min_agreement": 2}}, 400, "min_agreement"),
    ]
    for method, path, body, status, message in cases:
        r = httpx.request(method, f"{url}{path}", json=body, headers=auth("admin"), timeout=10)
        assert r.status_code == status, (path, body, r.text)
        assert message in r.json()["error"], (path, r.text)
    after = httpx.get(f"{url}/v1/admin/models/iris", headers=auth("viewer"), timeout=10).json()
    assert (after["aliases"], after["routing"], after["versions"]) == (
        before["aliases"],
        before["routing"],
        before["versions"],
    )
    r = cli(admin_server, "route", "iris", "--split", "1=50,2=40", "--split-header", "x-user")
    assert r.returncode == 2
    assert "add up to 100" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_proposal_is_a_404_naming_it(admin_server):
    for method, path in [
        ("GET", "/v1/admin/proposals/999"),
        ("POST", "/v1/admin/proposals/999/approve"),
        ("POST", "/v1/admin/proposals/999/promote"),
        ("POST", "/v1/admin/proposals/999/reject"),
    ]:
        r = httpx.request(method, f"{admin_server.url}{path}", headers=auth("admin"), timeout=10)
        assert (r.status_code, r.json()) == (404, {"error": "no proposal 999"}), (method, path)


def test_canary_and_sticky_split_over_http(admin_server):
    url = admin_server.url
    r = httpx.put(
        f"{url}/v1/admin/models/iris/routing",
        json={"canary": {"target": "1", "percent": 25}},
        headers=auth("operator"),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    versions = [infer(admin_server).json()["model_version"] for _ in range(400)]
    assert 0.17 < versions.count("1") / 400 < 0.33
    assert set(versions) == {"1", "2"}
    pinned = {infer(admin_server, "/v2/models/iris/versions/champion/infer").json()["model_version"] for _ in range(20)}
    assert pinned == {"2"}
    r = cli(admin_server, "route", "iris", "--split", "1=50,2=50", "--split-header", "X-User", key="operator")
    assert r.returncode == 0, r.stderr
    seen = {}
    for i in range(30):
        user = {"x-user": f"u{i}"}
        first = infer(admin_server, headers=user).json()["model_version"]
        assert all(infer(admin_server, headers=user).json()["model_version"] == first for _ in range(3))
        seen[i] = first
    assert set(seen.values()) == {"1", "2"}
    assert cli(admin_server, "route", "iris", "--clear", key="operator").returncode == 0
    assert {infer(admin_server).json()["model_version"] for _ in range(20)} == {"2"}


def test_publish_shadow_approve_promote_rollback_with_the_cli(admin_server):
    r = cli(admin_server, "route", "iris", "--shadow", "1", key="operator")
    assert r.returncode == 0, r.stderr
    for _ in range(30):
        assert infer(admin_server).json()["model_version"] == "2"
    shadow = json.loads(cli(admin_server, "shadow", "iris", key="viewer").stdout)
    pair = next(p for p in shadow if p["shadow_version"] == "1")
    assert pair["requests"] >= 30
    assert pair["shadow_errors"] == 0
    assert pair["agreement"] is not None
    proposal = json.loads(
        cli(
            admin_server, "propose", "iris", "1", "--min-agreement", "0.0", "--min-requests", "20", key="operator"
        ).stdout
    )
    r = cli(admin_server, "approve", str(proposal["id"]), key="operator")
    assert r.returncode == 2
    assert "needs 'admin'" in r.stderr
    assert json.loads(cli(admin_server, "approve", str(proposal["id"])).stdout)["state"] == "approved"
    assert json.loads(cli(admin_server, "promote", str(proposal["id"])).stdout)["state"] == "promoted"
    assert infer(admin_server).json()["model_version"] == "1"
    rolled = json.loads(cli(admin_server, "rollback", "iris", "champion", "--reason", "latency").stdout)
    assert rolled == {"model": "iris", "alias": "champion", "version": "2", "previous": "1"}
    assert infer(admin_server).json()["model_version"] == "2"
    audit = cli(admin_server, "audit", "iris", "--limit", "200", key="viewer").stdout
    for action in ("routing_set", "propose", "approve", "promote", "rollback"):
        assert f" {action} " in audit, action
    events = json.loads(cli(admin_server, "audit", "iris", "--action", "rollback", "--json", key="viewer").stdout)
    assert events[0]["actor"] == "key:admin"
    assert events[0]["reason"] == "champion: latency"
    status = cli(admin_server, "status", key="viewer").stdout
    assert "champion=2" in status
