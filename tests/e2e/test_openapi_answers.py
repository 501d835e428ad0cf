"""Every answer the server documents has a body schema in /docs/openapi.json (so an untyped answer cannot come back),
and the typed answers keep the JSON they always had, against a real server with an admin key."""

from __future__ import annotations

import httpx
import jsonschema
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_test_repository, write_server_config

from driftline.repository.demo import IRIS_FEATURES, iris_like_data
from driftline.store.audit import AuditAction

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("openapi-answers")
    config = write_server_config(workdir / "server.toml")
    root = build_test_repository(workdir / "models", iris_weights)
    x_ref, _ = iris_like_data(500, seed=3)  # reference data, so the drift route answers a report
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        root / "iris" / "reference.parquet"
    )
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def schema(server):
    r = httpx.get(f"{server.url}/docs/openapi.json", timeout=10)
    assert r.status_code == 200
    return r.json()


def _resolve(node: dict, components: dict) -> dict:
    for _ in range(10):  # a reference chain is short; bounded all the same
        ref = node.get("$ref")
        if ref is None:
            return node
        node = components[ref.removeprefix("#/components/schemas/")]
    raise AssertionError(f"reference chain too long at {node}")


def _is_bare(node: dict, components: dict) -> bool:
    """An object that says nothing about its fields (``{}`` or ``additionalProperties`` only), or a list of one."""
    node = _resolve(node, components)
    if node.get("type") == "array":
        return _is_bare(node.get("items", {}), components)
    if "oneOf" in node or "anyOf" in node or "enum" in node:
        return False
    return node.get("type") in (None, "object") and not node.get("properties")


def test_every_2xx_answer_documents_its_body(schema):
    components = schema["components"]["schemas"]
    untyped = set()
    for path, item in schema["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            for status, response in op["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                body = response.get("content", {}).get("application/json")
                if body is not None and _is_bare(body["schema"], components):
                    untyped.add((method, path))
    assert not untyped, sorted(untyped)


def test_the_empty_routing_policy_is_documented_and_answered_as_before(schema, server):
    components = schema["components"]["schemas"]
    cleared = schema["paths"]["/v1/admin/models/{name}/routing"]["delete"]["responses"]["200"]
    assert _resolve(cleared["content"]["application/json"]["schema"], components)["title"] == "RoutingPolicy"
    r = httpx.delete(f"{server.url}/v1/admin/models/iris/routing", headers=HEADERS, timeout=10)
    assert (r.status_code, r.json()) == (200, {})


def test_the_audit_filter_lists_the_actions_and_refuses_an_unknown_one(schema, server):
    params = {p["name"]: p for p in schema["paths"]["/v1/admin/audit"]["get"]["parameters"]}
    action = params["action"]["schema"]
    components = schema["components"]["schemas"]
    enums = [_resolve(s, components).get("enum") for s in action.get("oneOf", [action])]
    assert sorted(a.value for a in AuditAction) in [sorted(e) for e in enums if e]
    r = httpx.get(f"{server.url}/v1/admin/audit", params={"action": "lod"}, headers=HEADERS, timeout=10)
    assert r.status_code == 400, r.text
    assert "action" in r.json()["error"]
    r = httpx.get(f"{server.url}/v1/admin/audit", params={"action": "load"}, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()
    assert {e["action"] for e in r.json()} == {"load"}


def test_keys_keep_their_fields_and_missing_things_are_404(server):
    url = server.url
    created = httpx.post(f"{url}/v1/admin/keys", json={"name": "ci", "role": "viewer"}, headers=HEADERS, timeout=10)
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"name", "role", "key"}
    keys = {k["name"]: k for k in httpx.get(f"{url}/v1/admin/keys", headers=HEADERS, timeout=10).json()}
    assert keys["admin"] == {"name": "admin", "role": "admin", "source": "config"}  # no stored-key fields
    assert set(keys["ci"]) == {"name", "role", "source", "created_at", "revoked_at"}
    assert keys["ci"]["revoked_at"] is None  # null, not left out
    r = httpx.delete(f"{url}/v1/admin/keys/ci", headers=HEADERS, timeout=10)
    assert (r.status_code, r.json()) == (200, {"name": "ci", "revoked": True})
    for method, path, words in [
        ("DELETE", "/v1/admin/keys/ci", "no live stored key named 'ci'"),
        ("GET", "/v1/jobs/nope", "job 'nope' not found"),
        ("DELETE", "/v1/jobs/nope", "job 'nope' not found"),
    ]:
        r = httpx.request(method, f"{url}{path}", headers=HEADERS, timeout=10)
        assert r.status_code == 404, (path, r.text)
        assert r.json() == {"error": words}


def test_readiness_and_repository_answers_keep_their_fields(server):
    url = server.url
    assert httpx.get(f"{url}/v2/health/live", timeout=10).json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready", timeout=10).json() == {"ready": True}
    assert httpx.get(f"{url}/v2/models/iris/ready", timeout=10).json() == {"name": "iris", "ready": True}
    r = httpx.post(f"{url}/v2/repository/models/mlp/unload", headers=HEADERS, timeout=10)
    assert (r.status_code, r.json()) == (200, {"name": "mlp"})
    try:
        r = httpx.get(f"{url}/v2/models/mlp/ready", timeout=10)
        assert r.status_code == 503, r.text
        assert set(r.json()) == {"name", "ready", "reason"}
        assert r.json()["ready"] is False
        rows = httpx.post(f"{url}/v2/repository/index", json={}, headers=HEADERS, timeout=10).json()
        by_name = {(row["name"], row["state"]): row for row in rows}
        assert set(by_name[("iris", "READY")]) == {"name", "version", "state"}  # no reason on a ready row
        assert by_name[("mlp", "UNAVAILABLE")] == {"name": "mlp", "state": "UNAVAILABLE", "reason": "unloaded"}
    finally:
        r = httpx.post(f"{url}/v2/repository/models/mlp/load", headers=HEADERS, timeout=60)
    assert (r.status_code, r.json()) == (200, {"name": "mlp", "versions": ["1"]})


def test_the_drift_report_answers_what_its_schema_says_even_with_an_empty_window(schema, server):
    """Before any traffic the current window is empty: its statistics are NaN, which JSON writes as null, and the
    documented schema must allow that (a plain DriftReport schema says number and would be broken by the answer)."""
    op = schema["paths"]["/v1/models/{name}/drift"]["get"]
    documented = op["responses"]["200"]["content"]
    assert "text/html" in documented
    r = httpx.get(f"{server.url}/v1/models/iris/drift", headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    report = r.json()
    assert any(f["value"] is None for f in report["features"]), report  # the NaN path is what this exercises
    jsonschema.Draft202012Validator(documented["application/json"]["schema"]).validate(report)
