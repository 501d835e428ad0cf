"""A real MLflow Model Registry (an `mlflow server` on 127.0.0.1) feeding a real driftline server: versions and
aliases published there are served here, a bad digest is refused, and 20 alias moves and new versions under a
bounded load fail no request and never answer from a version that was not routable at that moment."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import Server, start_server
from tests.e2e.test_registry_sync import HEADERS, ROWS, SYNC_ENV, status, version_state, wait_for
from tests.helpers import write_server_config

from driftline.repository.demo import build_classifier_onnx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = 'max_batch_size = 16\nversion_policy = { policy = "latest", latest = 1 }\n'


def build(tmp_path: Path, weights, scale: float, name: str) -> Path:
    w, b = weights
    path = tmp_path / "built" / name / "model.onnx"
    build_classifier_onnx(path, w * scale, b)
    return path


def serve_from(mlflow_server, tmp_path: Path, name: str) -> Server:
    # The registry is shared with other tests: sync only this test's model, and wait until it is served.
    config = write_server_config(tmp_path / "server.toml", f'[registry]\nmodels = ["{name}"]\n')
    env = {
        **SYNC_ENV,
        "DRIFTLINE_REGISTRY__SOURCE": mlflow_server.registry_url,
        "DRIFTLINE_REGISTRY__CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_server(tmp_path / "models", tmp_path, env=env, extra_args=["--config", str(config)])
    wait_for(f"{name} ready", lambda: httpx.get(f"{server.url}/v2/models/{name}/ready", timeout=10).status_code == 200)
    return server


def test_mlflow_publish_shadow_promote_rollback_and_a_bad_digest(mlflow_server, tmp_path: Path, iris_weights):
    from tests.mlflow_server import mlflow_client, publish_onnx_version

    name = "mlflow_iris"
    publish_onnx_version(
        mlflow_server.url, name, build(tmp_path, iris_weights, 1, "v1"), aliases=["champion"], config_toml=CONFIG
    )
    server = serve_from(mlflow_server, tmp_path, name)
    try:
        infer = f"{server.url}/v2/models/{name}/infer"
        assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == "1"
        # registry.models keeps the other tests' registered models out.
        listed = httpx.get(f"{server.url}/v1/admin/models", headers=HEADERS, timeout=10).json()
        assert [m["name"] for m in listed] == [name]
        sha = status(server, name)["versions"][0]["sha256"]
        assert len(sha) == 64

        v2 = publish_onnx_version(
            mlflow_server.url, name, build(tmp_path, iris_weights, 2, "v2"), aliases=["challenger"]
        )
        wait_for("challenger", lambda: status(server, name)["aliases"].get("challenger", {}).get("version") == str(v2))
        # Shadow the challenger, then promote it through a proposal with a rule, then roll back.
        r = httpx.put(
            f"{server.url}/v1/admin/models/{name}/routing",
            json={"shadow": {"target": "challenger"}},
            headers=HEADERS,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        for _ in range(25):
            assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == "1"
        proposal = httpx.post(
            f"{server.url}/v1/admin/models/{name}/proposals",
            json={"version": v2, "rule": {"min_requests": 20, "min_agreement": 0.0}},
            headers=HEADERS,
            timeout=10,
        ).json()
        pid = proposal["id"]
        wait_for(
            "rule passes",
            lambda: httpx.get(f"{server.url}/v1/admin/proposals/{pid}", headers=HEADERS, timeout=10).json()[
                "rule_passes"
            ],
        )
        for step in ("approve", "promote"):
            r = httpx.post(f"{server.url}/v1/admin/proposals/{pid}/{step}", json={}, headers=HEADERS, timeout=10)
            assert r.status_code == 200, r.text
        assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == str(v2)
        r = httpx.post(
            f"{server.url}/v1/admin/models/{name}/aliases/champion/rollback", json={}, headers=HEADERS, timeout=10
        )
        assert r.json()["version"] == "1"
        assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == "1"

        # A digest the artifact does not match: never loaded, the champion keeps serving.
        v3 = publish_onnx_version(mlflow_server.url, name, build(tmp_path, iris_weights, 3, "v3"), sha256="f" * 64)
        wait_for("v3 refused", lambda: version_state(server, name, v3) == "FAILED")
        assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == "1"
        reason = next(v["reason"] for v in status(server, name)["versions"] if v["version"] == str(v3))
        assert "sha256 mismatch" in reason
        # An alias at the refused version is refused too, and stays where it was.
        mlflow_client(mlflow_server.url).set_registered_model_alias(name, "champion", str(v3))
        wait_for(
            "alias refused",
            lambda: httpx.get(
                f"{server.url}/v1/admin/audit?model={name}&action=alias_refused", headers=HEADERS, timeout=10
            ).json(),
        )
        assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == "1"

        # A version deleted in MLflow is unloaded here and moved aside; what the aliases hold goes on serving.
        v4 = publish_onnx_version(mlflow_server.url, name, build(tmp_path, iris_weights, 4, "v4"))
        wait_for("v4 ready", lambda: version_state(server, name, v4) == "READY")
        mlflow_client(mlflow_server.url).delete_model_version(name, str(v4))
        pinned = f"{server.url}/v2/models/{name}/versions/{v4}/infer"
        wait_for("v4 unloaded", lambda: httpx.post(pinned, json=ROWS, timeout=10).status_code == 404)
        unloads = httpx.get(
            f"{server.url}/v1/admin/audit?model={name}&action=unload", headers=HEADERS, timeout=10
        ).json()
        assert any(e["version_before"] == str(v4) and e["reason"] == "removed from the repository" for e in unloads)
        assert list((tmp_path / "models" / name / ".deleted").glob(f"{v4}-*"))
        assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == "1"

        # Deleting v2 in MLflow deletes its challenger alias there. Here the shadow routing still names challenger:
        # the alias stays (refused, on record), so v2 stays. Once the routing lets go, both follow the registry.
        mlflow_client(mlflow_server.url).delete_model_version(name, str(v2))
        refusals = f"{server.url}/v1/admin/audit?model={name}&action=delete_refused"
        wait_for("v2 held", lambda: httpx.get(refusals, headers=HEADERS, timeout=10).json())
        assert status(server, name)["aliases"]["challenger"]["version"] == str(v2)
        r = httpx.put(f"{server.url}/v1/admin/models/{name}/routing", json={}, headers=HEADERS, timeout=10)
        assert r.status_code == 200, r.text
        wait_for("challenger gone", lambda: "challenger" not in status(server, name)["aliases"])
        wait_for("v2 unloaded", lambda: version_state(server, name, v2) is None)
        assert httpx.post(infer, json=ROWS, timeout=10).json()["model_version"] == "1"
    finally:
        server.stop()


def _timeline(server: Server, name: str, alias: str) -> list[tuple[float, str]]:
    events = httpx.get(f"{server.url}/v1/admin/audit?model={name}&limit=10000", headers=HEADERS, timeout=10).json()
    moves = []
    for e in reversed(events):
        if e["action"] in {"alias_set", "rollback"} and (e["reason"] or "").split(":")[0] == alias:
            at = datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp()
            moves.append((at, e["version_after"]))
    return moves


def test_twenty_alias_moves_and_new_versions_under_load_fail_no_request(mlflow_server, tmp_path: Path, iris_weights):
    from tests.mlflow_server import mlflow_client, publish_onnx_version

    name = "busy"
    client = mlflow_client(mlflow_server.url)
    publish_onnx_version(
        mlflow_server.url, name, build(tmp_path, iris_weights, 1, "b1"), aliases=["champion"], config_toml=CONFIG
    )
    server = serve_from(mlflow_server, tmp_path, name)
    results: list[tuple[float, float, int, str]] = []
    stop = threading.Event()

    def load(pinned: bool) -> None:
        path = f"/v2/models/{name}/versions/champion/infer" if pinned else f"/v2/models/{name}/infer"
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(50_000):  # bounded in count and in time
                if stop.is_set() or time.monotonic() > deadline:
                    return
                start = time.time()
                r = http.post(path, json=ROWS)
                version = r.json().get("model_version", "") if r.status_code == 200 else r.text
                results.append((start, time.time(), r.status_code, version))

    threads = [threading.Thread(target=load, args=(i % 2 == 0,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        published = [1]
        for scale in (2, 3):  # new versions arrive while the load runs
            published.append(
                publish_onnx_version(mlflow_server.url, name, build(tmp_path, iris_weights, scale, f"b{scale}"))
            )
        for v in published[1:]:
            # Loaded once on arrival (the version policy may retire it again until an alias points at it).
            wait_for(
                f"version {v} loaded",
                lambda v=v: any(
                    e["version_after"] == str(v)
                    for e in httpx.get(
                        f"{server.url}/v1/admin/audit?model={name}&action=load", headers=HEADERS, timeout=10
                    ).json()
                ),
                timeout=90,  # a download, a load and a warm-up under the load above, on 2 busy cores
            )
        for move in range(20):
            target = published[(move + 1) % len(published)]  # 2, 3, 1, 2, ...: every move changes the alias
            client.set_registered_model_alias(name, "champion", str(target))
            wait_for(
                f"move {move} to {target}",
                lambda target=target: status(server, name)["aliases"]["champion"]["version"] == str(target),
            )
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    try:
        moves = _timeline(server, name, "champion")
    finally:
        server.stop()
    failed = [r for r in results if r[2] != 200]
    assert not failed, failed[:5]
    assert len(results) > 200
    assert len([m for m in moves if m[0] > results[0][0]]) >= 20
    slack = 0.02  # the audit row is written just after the swap, in the same event-loop step

    def routable(start: float, end: float) -> set[str]:
        before = [v for at, v in moves if at <= start - slack]
        during = {v for at, v in moves if start - slack < at <= end + slack}
        return ({before[-1]} if before else set()) | during

    wrong = [r for r in results if r[3] not in routable(r[0], r[1])]
    assert not wrong, wrong[:5]
    assert {r[3] for r in results} == {str(v) for v in published}
