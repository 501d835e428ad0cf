"""deploy/docker/kserve-serve.sh, the KServe runtime's command, against a real server on 127.0.0.1: each layout a
storageUri may hold in /mnt/models is served, as the InferenceService's model where it is one model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.deploy.manifests import DEPLOY, one
from tests.e2e.conftest import Server, free_port, wait_until_answering
from tests.helpers import build_test_repository, metric

from driftline.security.keys import new_key

SCRIPT = DEPLOY / "docker" / "kserve-serve.sh"
GOOD = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
NAME = "fraud-detector"  # what {{.Name}} gives: the InferenceService's name


def _storage(kind: str, tmp: Path, weights) -> Path:
    """/mnt/models as the storage initializer leaves it for each kind of storageUri."""
    repository = build_test_repository(tmp / "built", weights)
    models = tmp / "mnt-models"
    if kind == "repository":  # a driftline repository, served as it is
        shutil.copytree(repository, models)
    elif kind == "model":  # one driftline model: config.toml and numbered versions
        shutil.copytree(repository / "iris", models)
    else:  # bare files, as KServe's ONNX examples keep them
        models.mkdir()
        shutil.copy(repository / "iris" / "2" / "model.onnx", models / "model.onnx")
        shutil.copy(repository / "iris" / "config.toml", models / "config.toml")
    models.chmod(0o555)  # KServe mounts it read-only: nothing may be written there
    return models


# A server start each: 4-12 s on 2 busy cores.
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize(
    ("kind", "model", "versions"),
    [("file", NAME, ["1"]), ("model", NAME, ["1", "2"]), ("repository", "iris", ["1", "2"])],
)
def test_each_storage_layout_is_served(tmp_path: Path, iris_weights, kind: str, model: str, versions: list[str]):
    models = _storage(kind, tmp_path, iris_weights)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "admin.admin").write_text(new_key())
    run = tmp_path / "run"
    port = free_port()
    runtime = one("ClusterServingRuntime").body["spec"]["containers"][0]
    env = {
        **os.environ,
        # The runtime's own variables (its SQLite path is re-pointed below), then the script's paths.
        **{e["name"]: e["value"] for e in runtime["env"] if e["name"] != "DRIFTLINE_HTTP__DRAIN_DELAY_S"},
        "DRIFTLINE_DATABASE": str(run / "driftline.db"),
        "MODEL_DIR": str(models),
        "RUN_DIR": str(run),
        "KEYS_DIR": str(keys),
        "RENDER_CONFIG": str(DEPLOY / "docker" / "render_config.py"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # python and driftline
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        # The runtime's arguments, on loopback and a free port instead of 0.0.0.0:8080.
        proc = subprocess.Popen(
            ["sh", str(SCRIPT), NAME, "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, port, models, log)
    try:
        wait_until_answering(server, timeout=90)
        meta = httpx.get(f"{server.url}/v2/models/{model}", timeout=10).json()
        assert meta["versions"] == versions
        # The model's config.toml (beside the bare file, or in the folder) applies: iris batches up to 16 rows.
        config = httpx.get(f"{server.url}/v2/models/{model}/config", timeout=10).json()
        assert config["max_batch_size"] == 16
        answer = httpx.post(f"{server.url}/v2/models/{model}/infer", json=GOOD, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == versions[-1]
        # The families the HPA's and KEDA's queries read (deploy/kubernetes/prometheus-adapter/values.yaml).
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        labels = {"model": model, "version": versions[-1]}
        assert metric(text, "driftline_queue_seconds_count", labels) == 1
        assert metric(text, "driftline_queue_seconds_sum", labels) is not None
        rendered = (run / "config.toml").read_text()
        assert '[[auth.keys]]\nname = "admin"\nrole = "admin"' in rendered
    finally:
        server.stop()  # the script exec'd the server: its pid is the server's
        models.chmod(0o755)


def test_storage_with_nothing_driftline_reads_is_refused_with_a_message(tmp_path: Path):
    models = tmp_path / "mnt-models"
    models.mkdir()
    (models / "iris.onnx").write_bytes(b"")  # another file name: driftline reads model.onnx only
    done = subprocess.run(
        ["sh", str(SCRIPT), NAME, "--port", "1"],
        env={**os.environ, "MODEL_DIR": str(models), "RUN_DIR": str(tmp_path / "run")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert f"nothing to serve in {models}" in done.stderr
