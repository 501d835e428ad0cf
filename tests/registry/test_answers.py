"""The registry sync's answers over HTTP keep their JSON (field names, values, the off state), and the OpenAPI
schema documents them."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest
from tests.e2e.conftest import start_server
from tests.e2e.test_registry_sync import HEADERS, SYNC_ENV, publish, set_source_aliases, wait_for
from tests.helpers import write_config, write_server_config

from driftline.registry.answers import SyncOff, SyncWoken
from driftline.repository.demo import build_classifier_onnx

STATUS_FIELDS = {
    "source",
    "state",
    "leader",
    "last_error",
    "last_success_s_ago",
    "next_attempt_in_s",
    "failed_versions",
    "deleted_but_held",
    "changed_at_source",
    "problems",
}


@pytest.mark.e2e
@pytest.mark.slow
def test_status_and_sync_answers_keep_their_json(tmp_path: Path, iris_weights):
    source = tmp_path / "registry"
    set_source_aliases(source, 1)
    publish(source, 1, iris_weights)
    publish(source, 2, iris_weights, sha256="0" * 64)  # a digest the artifact does not match
    config = write_server_config(tmp_path / "server.toml")
    env = {
        **SYNC_ENV,
        # Polled once at start; every later pass is the one this test asks for.
        "DRIFTLINE_REGISTRY__POLL_INTERVAL_S": "3600",
        "DRIFTLINE_REGISTRY__MAX_BACKOFF_S": "3600",
        "DRIFTLINE_REGISTRY__SOURCE": str(source),
        "DRIFTLINE_REGISTRY__CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_server(tmp_path / "models", tmp_path, env=env, extra_args=["--config", str(config)])
    try:

        def registry() -> dict[str, object]:
            r = httpx.get(f"{server.url}/v1/admin/registry", headers=HEADERS, timeout=10)
            assert r.status_code == 200, r.text
            body: dict[str, object] = r.json()
            return body

        wait_for("the first poll", lambda: registry()["state"] == "ok")
        status = registry()
        assert set(status) == STATUS_FIELDS
        assert (status["source"], status["leader"], status["last_error"]) == (str(source), True, None)
        assert isinstance(status["last_success_s_ago"], float)
        assert isinstance(status["next_attempt_in_s"], float)
        assert status["failed_versions"] == [{"model": "iris", "version": "2", "sha256": "0" * 64}]
        assert (status["deleted_but_held"], status["changed_at_source"], status["problems"]) == ([], [], [])

        # A pass that loads one version, refuses another and moves the alias: each list says so, as before.
        publish(source, 3, iris_weights)
        publish(source, 4, iris_weights, sha256="1" * 64)
        set_source_aliases(source, 3)
        r = httpx.post(f"{server.url}/v1/admin/registry/sync", json={}, headers=HEADERS, timeout=60)
        assert r.status_code == 200, r.text
        report = r.json()
        assert set(report) == {"loaded", "failed", "aliases", "refused", "deleted"}
        assert report["loaded"] == ["iris/3"]
        assert [set(f) for f in report["failed"]] == [{"model", "version", "reason"}]
        assert (report["failed"][0]["model"], report["failed"][0]["version"]) == ("iris", "4")
        assert "sha256 mismatch" in report["failed"][0]["reason"]
        assert report["aliases"] == [{"model": "iris", "alias": "champion", "version": "3"}]
        assert (report["refused"], report["deleted"]) == ([], [])
    finally:
        server.stop()


@pytest.mark.e2e
@pytest.mark.slow
def test_with_no_source_the_status_is_off_and_the_schema_names_the_answers(tmp_path: Path, iris_weights):
    build_classifier_onnx(tmp_path / "models" / "iris" / "1" / "model.onnx", *iris_weights)
    write_config(tmp_path / "models" / "iris", "max_batch_size = 8\n")
    config = write_server_config(tmp_path / "server.toml")
    server = start_server(tmp_path / "models", tmp_path, env=SYNC_ENV, extra_args=["--config", str(config)])
    try:
        r = httpx.get(f"{server.url}/v1/admin/registry", headers=HEADERS, timeout=10)
        assert (r.status_code, r.json()) == (200, {"source": None, "state": "off"})
        r = httpx.post(f"{server.url}/v1/admin/registry/sync", json={}, headers=HEADERS, timeout=10)
        assert r.status_code == 409
        assert "registry.source" in r.json()["error"]

        schema = httpx.get(f"{server.url}/docs/openapi.json", timeout=10).json()
        components = schema["components"]["schemas"]
        assert set(components["SyncStatus"]["properties"]) == STATUS_FIELDS
        assert set(components["SyncOff"]["properties"]) == {"source", "state"}
        assert set(components["SyncReport"]["properties"]) == {"loaded", "failed", "aliases", "refused", "deleted"}

        def answers(path: str, method: str) -> str:
            return str(schema["paths"][path][method]["responses"]["200"])

        assert "SyncStatus" in answers("/v1/admin/registry", "get")
        assert "SyncOff" in answers("/v1/admin/registry", "get")
        assert "SyncReport" in answers("/v1/admin/registry/sync", "post")
        assert "SyncWoken" in answers("/v1/admin/registry/sync", "post")
    finally:
        server.stop()


def test_a_followers_answer_and_the_off_state_encode_as_before():
    """A follower's answer to a sync request needs several workers to reach over HTTP; its body is pinned here."""
    assert msgspec.json.decode(msgspec.json.encode(SyncWoken())) == {"woken": True}
    assert msgspec.json.decode(msgspec.json.encode(SyncOff())) == {"source": None, "state": "off"}
