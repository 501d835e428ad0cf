"""Lineage on a real server: a version's ``lineage.json`` shown in the admin status, ``driftline models status``
and the v2 model metadata; a bad one fails its version with the file and field named (the others serve); captured
rows exported by ``driftline capture export`` carry each version's lineage in the Parquet file's metadata."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import httpx
import pyarrow.parquet as pq
import pytest
from tests.e2e.conftest import start_server
from tests.e2e.test_registry_sync import SYNC_ENV, wait_for
from tests.helpers import ADMIN_KEY, build_test_repository, write_server_config
from tests.registry.test_lineage_mlflow import publish_run

from driftline.repository.demo import build_classifier_onnx

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROWS = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2] * 2}]}
RECORD = {
    "run_id": "run-42",
    "params": {"lr": "0.05"},
    "metrics": {"val_accuracy": 0.95},
    "datasets": [{"name": "iris-train", "digest": "9f8e7d", "source": "s3://data/iris.parquet"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("lineage")
    root = build_test_repository(workdir / "models", iris_weights)
    # Versions 1 and 2 serve, each with its record; version 3 (a copy of 1) states a parameter as a number.
    (root / "iris" / "1" / "lineage.json").write_text(json.dumps(RECORD))
    (root / "iris" / "2" / "lineage.json").write_text(json.dumps({**RECORD, "run_id": "run-43"}))
    (root / "iris" / "3").mkdir()
    (root / "iris" / "3" / "model.onnx").write_bytes((root / "iris" / "1" / "model.onnx").read_bytes())
    (root / "iris" / "3" / "lineage.json").write_text(json.dumps({"params": {"lr": 0.05}}))
    (root / "iris" / "config.toml").write_text(
        'max_batch_size = 16\nversion_policy = { policy = "all" }\n[capture]\nenabled = true\n'
    )
    config = write_server_config(
        workdir / "server.toml", f'[capture]\ndirectory = "{workdir / "captures"}"\nsegment_seconds = 0.2\n'
    )
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


def cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRIFTLINE_URL": server.url, "DRIFTLINE_API_KEY": ADMIN_KEY}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_status_shows_each_versions_lineage_and_why_a_bad_one_failed(server):
    status = httpx.get(f"{server.url}/v1/admin/models/iris", headers=HEADERS, timeout=10).json()
    versions = {v["version"]: v for v in status["versions"]}
    artifact = server.root / "iris" / "1" / "model.onnx"
    assert versions["1"]["lineage"] == {
        **RECORD,
        "sha256": hashlib.sha256(artifact.read_bytes()).hexdigest(),
        "source_uri": str(artifact.parent),
    }
    assert versions["2"]["lineage"]["run_id"] == "run-43"
    assert versions["3"]["state"] == "FAILED"
    reason = versions["3"]["reason"]
    assert str(server.root / "iris" / "3" / "lineage.json") in reason
    assert "$.params.lr" in reason
    shown = cli(server, "models", "status", "iris")
    assert shown.returncode == 0, shown.stderr
    assert f"  version 1: run run-42 from {artifact.parent} sha256={versions['1']['sha256'][:12]}" in shown.stdout


def test_v2_metadata_carries_lineage_beside_the_protocols_fields(server):
    every = httpx.get(f"{server.url}/v2/models/iris", timeout=10).json()
    # The protocol's own fields as they were; the lineage is an extension field beside them.
    assert {"name", "versions", "platform", "inputs", "outputs", "parameters"} <= set(every)
    assert every["versions"] == ["1", "2"]
    assert {v: m["run_id"] for v, m in every["lineage"].items()} == {"1": "run-42", "2": "run-43"}
    one = httpx.get(f"{server.url}/v2/models/iris/versions/2", timeout=10).json()
    assert list(one["lineage"]) == ["2"]
    assert one["lineage"]["2"]["datasets"] == RECORD["datasets"]


def exported_lineage(server, tmp_path, model: str, versions: list[str]) -> dict:
    """Infer 3 requests of 2 rows on each version, export the captured rows with the CLI; the file's lineage."""
    for version in versions:
        for _ in range(3):
            r = httpx.post(f"{server.url}/v2/models/{model}/versions/{version}/infer", json=ROWS, timeout=10)
            assert r.status_code == 200, r.text
    out = tmp_path / f"{model}.parquet"
    want = 6 * len(versions)
    deadline = time.monotonic() + 30
    for _ in range(150):  # segments are written every 0.2 s: bounded in count and time
        done = cli(server, "capture", "export", model, "--output", str(out))
        assert done.returncode == 0, done.stderr
        if pq.read_metadata(out).num_rows == want or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert pq.read_metadata(out).num_rows == want
    return json.loads(pq.read_schema(out).metadata[b"driftline.lineage"])


def test_captured_rows_carry_their_versions_lineage_through_the_export(server, tmp_path):
    lineage = exported_lineage(server, tmp_path, "iris", ["1", "2"])
    assert {v: m["run_id"] for v, m in lineage.items()} == {"1": "run-42", "2": "run-43"}
    assert lineage["1"]["params"] == RECORD["params"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_an_mlflow_run_is_the_synced_versions_lineage_in_metadata_status_and_captures(
    mlflow_server, tmp_path, iris_weights
):
    name = f"lineage-e2e-{time.time_ns() % 10**9}"
    onnx = tmp_path / "model.onnx"
    build_classifier_onnx(onnx, *iris_weights)
    version, run_id = publish_run(mlflow_server.url, name, onnx.read_bytes(), "0.3", 0.97, with_dataset=True)
    config = write_server_config(
        tmp_path / "server.toml",
        f'[registry]\nmodels = ["{name}"]\n[capture]\nenabled = true\ndirectory = "{tmp_path / "captures"}"\n'
        "segment_seconds = 0.2\n",
    )
    env = {
        **SYNC_ENV,
        "DRIFTLINE_REGISTRY__SOURCE": mlflow_server.registry_url,
        "DRIFTLINE_REGISTRY__CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_server(tmp_path / "models", tmp_path, env=env, extra_args=["--config", str(config)])
    try:
        ready = f"{server.url}/v2/models/{name}/ready"
        wait_for(f"{name} ready", lambda: httpx.get(ready, timeout=10).status_code == 200)
        meta = httpx.get(f"{server.url}/v2/models/{name}", timeout=10).json()["lineage"][str(version)]
        assert (meta["run_id"], meta["params"], meta["metrics"]) == (run_id, {"lr": "0.3"}, {"val_accuracy": 0.97})
        assert meta["datasets"][0]["name"] == "iris-train"
        assert (meta["source_uri"], meta["registry"]) == (f"models:/{name}/{version}", mlflow_server.registry_url)
        status = httpx.get(f"{server.url}/v1/admin/models/{name}", headers=HEADERS, timeout=10).json()
        assert status["versions"][0]["lineage"] == meta
        assert exported_lineage(server, tmp_path, name, [str(version)]) == {str(version): meta}
    finally:
        server.stop()
