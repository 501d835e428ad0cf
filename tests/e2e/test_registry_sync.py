"""Registry sync from a directory source into a real server: new versions, aliases moved at the source, and every
fault (corrupt artifact, sha256 mismatch, signature change under an alias, unreachable source) leaving the serving
state as it was."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.e2e.conftest import Server, start_server
from tests.helpers import ADMIN_KEY, write_config, write_server_config

from driftline.repository.demo import build_classifier_onnx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS = {
    "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]
}
HEADERS = {"authorization": f"Bearer {ADMIN_KEY}"}
SYNC_ENV = {
    "DRIFTLINE_REGISTRY__POLL_INTERVAL_S": "0.2",
    "DRIFTLINE_REGISTRY__MAX_BACKOFF_S": "0.5",
    "DRIFTLINE_CREATE_DEMO": "false",
}


def wait_for(what: str, check, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def status(server: Server, name: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/v1/admin/models/{name}", headers=HEADERS, timeout=10).json()


def version_state(server: Server, name: str, version: int) -> str | None:
    return next((v["state"] for v in status(server, name)["versions"] if v["version"] == str(version)), None)


def answer(server: Server, path: str = "/v2/models/iris/infer") -> str:
    r = httpx.post(f"{server.url}{path}", json=ROWS, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


def publish(source: Path, version: int, weights, *, features: int = 4, sha256: str | None = None) -> Path:
    w, b = weights
    if features != w.shape[0]:
        w = np.vstack([w, w[: features - w.shape[0]]])
    path = source / "iris" / str(version) / "model.onnx"
    # Build next to the source and move in, as a publisher should: the folder appears with its file whole.
    staging = source / f".staging-{version}" / "model.onnx"
    build_classifier_onnx(staging, w * version, b)
    if sha256 is not None:
        (staging.parent / "model.onnx.sha256").write_text(f"{sha256}  model.onnx\n")
    staging.parent.rename(path.parent)
    return path


def set_source_aliases(source: Path, champion: int) -> None:
    write_config(source / "iris", f"max_batch_size = 16\naliases = {{ champion = {champion} }}\n")


def test_directory_sync_end_to_end(tmp_path: Path, iris_weights):
    source = tmp_path / "registry"
    set_source_aliases(source, 1)
    publish(source, 1, iris_weights)
    config = write_server_config(tmp_path / "server.toml")
    env = {
        **SYNC_ENV,
        "DRIFTLINE_REGISTRY__SOURCE": str(source),
        "DRIFTLINE_REGISTRY__CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_server(tmp_path / "models", tmp_path, env=env, extra_args=["--config", str(config)])
    try:
        # The first sync brought version 1 and the champion alias.
        assert answer(server) == "1"
        assert status(server, "iris")["aliases"]["champion"]["version"] == "1"

        # A new version arrives: loaded and warm, but the champion still answers unpinned requests.
        publish(source, 2, iris_weights)
        wait_for("version 2 ready", lambda: version_state(server, "iris", 2) == "READY")
        assert answer(server) == "1"
        assert answer(server, "/v2/models/iris/versions/2/infer") == "2"
        cached = list((tmp_path / "cache").iterdir())
        digest = hashlib.sha256((source / "iris" / "2" / "model.onnx").read_bytes()).hexdigest()
        assert any(p.name == digest for p in cached)

        # The alias moves at the source: the server follows, on record.
        set_source_aliases(source, 2)
        wait_for("champion at 2", lambda: answer(server) == "2")
        moved = httpx.get(
            f"{server.url}/v1/admin/audit?model=iris&action=alias_set", headers=HEADERS, timeout=10
        ).json()
        assert moved[0]["actor"] == f"registry:{source}"
        assert moved[0]["version_after"] == "2"

        # A truncated artifact: refused at load, never routable, set aside, on record; version 2 keeps serving.
        bad = publish(source, 3, iris_weights)
        bad.write_bytes(bad.read_bytes()[:200])
        wait_for("version 3 failed", lambda: version_state(server, "iris", 3) == "FAILED")
        assert answer(server) == "2"
        r = httpx.post(f"{server.url}/v2/models/iris/versions/3/infer", json=ROWS, timeout=10)
        assert r.status_code == 503  # known (it failed to load), so not a 404
        assert not (tmp_path / "models" / "iris" / "3").exists()
        assert list((tmp_path / "models" / "iris" / ".failed").glob("3-*"))

        # A sha256 the artifact does not match: refused before it reaches the repository.
        publish(source, 4, iris_weights, sha256="0" * 64)
        wait_for("version 4 failed", lambda: version_state(server, "iris", 4) == "FAILED")
        reason = next(v["reason"] for v in status(server, "iris")["versions"] if v["version"] == "4")
        assert "sha256 mismatch" in reason
        assert not (tmp_path / "models" / "iris" / "4").exists()

        # A version whose signature changed: it loads, but the alias may not move onto it.
        publish(source, 5, iris_weights, features=5)
        wait_for("version 5 ready", lambda: version_state(server, "iris", 5) == "READY")
        set_source_aliases(source, 5)
        refused = wait_for(
            "alias refused",
            lambda: httpx.get(
                f"{server.url}/v1/admin/audit?model=iris&action=alias_refused", headers=HEADERS, timeout=10
            ).json(),
        )
        assert "signature changed incompatibly" in refused[0]["reason"]
        assert answer(server) == "2"
        failed = httpx.get(
            f"{server.url}/v1/admin/audit?model=iris&action=load_failed", headers=HEADERS, timeout=10
        ).json()
        assert {e["version_after"] for e in failed} >= {"3", "4"}

        # The source goes away: nothing changes, the sync says so and backs off; it recovers when the source is back.
        source.rename(tmp_path / "registry-away")
        wait_for(
            "unreachable",
            lambda: (
                httpx.get(f"{server.url}/v1/admin/registry", headers=HEADERS, timeout=10).json()["state"]
                == "unreachable"
            ),
        )
        assert answer(server) == "2"
        up = f'driftline_registry_up{{source="{source}"}}'
        assert f"{up} 0.0" in httpx.get(f"{server.url}/metrics", timeout=10).text
        (tmp_path / "registry-away").rename(source)
        wait_for(
            "recovered",
            lambda: httpx.get(f"{server.url}/v1/admin/registry", headers=HEADERS, timeout=10).json()["state"] == "ok",
        )
        scrape = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert f"{up} 1.0" in scrape
        assert f'driftline_registry_failed_versions{{source="{source}"}} 2.0' in scrape  # versions 3 and 4
        assert 'driftline_alias_version{alias="champion",model="iris"} 2.0' in scrape
        assert 'driftline_failed_versions{model="iris"} 2.0' in scrape
    finally:
        server.stop()
