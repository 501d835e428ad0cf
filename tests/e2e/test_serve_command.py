"""`driftline serve` as the README runs it: the demo repository on first run, several worker processes, what the
start-up log says, a repository the registry fills, and a read-only repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import Server, free_port, start_server, wait_until_answering
from tests.helpers import build_test_repository, write_config

from driftline.security.keys import hash_key

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

IRIS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [6.7, 3.0, 5.2, 2.3]}]}
# The one format of every line the server logs (ours, uvicorn's, litestar's), in every process.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def launch(workdir: Path, *args: str, env: dict[str, str] | None = None, path: str = "/v2/health/ready") -> Server:
    """`driftline serve ARGS` in ``workdir`` as a user types it (no repository argument unless ARGS has one)."""
    port = free_port()
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", "serve", "--port", str(port), *args],
            cwd=workdir,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return wait_until_answering(Server(proc, port, workdir, log), path)


def assert_one_format(log: Path) -> list[str]:
    lines = log.read_text().splitlines()
    assert lines
    odd = [line for line in lines if not LOG_LINE.match(line)]
    assert not odd, odd
    return lines


def test_first_run_builds_and_serves_the_demo_repository(tmp_path):
    srv = launch(tmp_path)  # `driftline serve` in a fresh folder: ./demo-models is built
    try:
        assert (tmp_path / "demo-models" / "iris" / "2" / "model.onnx").exists()
        r = httpx.post(f"{srv.url}/v2/models/iris/infer", json=IRIS, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][1]["data"] == [2]  # the demo classifier knows a virginica when it sees one
        models = {m["name"] for m in httpx.post(f"{srv.url}/v2/repository/index", timeout=10).json()}
        try:
            import torch  # noqa: F401

            assert models == {"iris", "iris_torch"}
        except ImportError:
            assert models == {"iris"}
    finally:
        srv.stop()
    lines = assert_one_format(srv.log)
    assert any("built demo repository" in line for line in lines)
    assert any(line.endswith("model iris: serving version(s) 1, 2") for line in lines)


def test_the_demo_goes_into_a_named_repository_only_when_asked(tmp_path):
    srv = launch(tmp_path, "try-it", "--demo")
    try:
        assert httpx.post(f"{srv.url}/v2/models/iris/infer", json=IRIS, timeout=10).status_code == 200
    finally:
        srv.stop()
    assert (tmp_path / "try-it" / "iris" / "2" / "model.onnx").exists()
    assert not (tmp_path / "demo-models").exists()


def test_several_worker_processes(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    srv = start_server(root, tmp_path, extra_args=["--workers", "2"])
    try:
        for _ in range(20):
            assert httpx.post(f"{srv.url}/v2/models/iris/infer", json=IRIS, timeout=10).status_code == 200
    finally:
        srv.stop()
    # uvicorn's supervisor and both workers log in the same format; each worker names what it serves.
    lines = assert_one_format(srv.log)
    assert sum(line.endswith("model iris: serving version(s) 1, 2") for line in lines) == 2


def test_a_missing_repository_is_created_for_the_registry_and_an_unreachable_source_is_retried(tmp_path):
    # Nothing listens on this port: the source is unreachable from the first poll on, and the server runs anyway.
    source = f"ftp://127.0.0.1:{free_port()}/registry"
    env = {"DRIFTLINE_REGISTRY__POLL_INTERVAL_S": "0.2", "DRIFTLINE_REGISTRY__MAX_BACKOFF_S": "0.4"}
    srv = launch(tmp_path, "synced-models", "--registry", source, env=env, path="/v2/health/live")
    try:
        assert (tmp_path / "synced-models").is_dir()
        assert not (tmp_path / "demo-models").exists()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and srv.log.read_text().count("unreachable (next try in") < 3:
            time.sleep(0.2)
        assert srv.proc.poll() is None
    finally:
        srv.stop()
    text = srv.log.read_text()
    assert text.count("unreachable (next try in") >= 3, text
    assert f"created it for the sync from {source}" in text
    assert_one_format(srv.log)


KEYS = {"viewer": "dl_test_viewer_key", "admin": "dl_test_admin_key"}


def _immutable(path: Path, on: bool) -> bool:
    flag = "+i" if on else "-i"
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False).returncode == 0


def test_read_only_model_folder_failed_version_and_keyed_index(tmp_path, iris_weights):
    """One server for three start-up states: a model folder nobody may write (its drift profile stays in
    memory), a truncated version (logged with its reason), and keys (the repository index needs one)."""
    root = build_test_repository(tmp_path / "models", iris_weights)
    x = np.random.default_rng(0).normal(5.0, 1.0, size=(200, 4)).astype(np.float32)
    pl.DataFrame({f"f{i}": x[:, i] for i in range(4)}).write_parquet(root / "iris" / "reference.parquet")
    (root / "mlp" / "2").mkdir()
    (root / "mlp" / "2" / "model.onnx").write_bytes((root / "mlp" / "1" / "model.onnx").read_bytes()[:100])
    write_config(root / "mlp", 'max_batch_size = 32\nversion_policy = { policy = "all" }\n')
    config = tmp_path / "server.toml"
    lines = []
    for role, key in KEYS.items():
        lines += ["[[auth.keys]]", f'name = "{role}"', f'role = "{role}"', f'sha256 = "{hash_key(key)}"']
    config.write_text("\n".join(lines) + "\n")
    # Tests run as root, which writes through chmod; the immutable flag stops root too.
    if not _immutable(root / "iris", on=True):
        pytest.skip("chattr +i is not available here")
    try:
        srv = start_server(root, tmp_path, extra_args=["--config", str(config)])
        try:
            admin = {"authorization": f"Bearer {KEYS['admin']}"}
            viewer = {"authorization": f"Bearer {KEYS['viewer']}"}
            assert httpx.post(f"{srv.url}/v2/models/iris/infer", json=IRIS, timeout=10).status_code == 200
            status = httpx.get(f"{srv.url}/v1/admin/models/iris", headers=admin, timeout=10).json()
            notes = [v.get("note") for v in status["versions"]]
            assert all(note and "could not be written" in note for note in notes), status
            drift = httpx.get(f"{srv.url}/v1/models/iris/versions/1/drift", headers=viewer, timeout=10)
            assert drift.status_code == 200, drift.text
            # A reload builds the profile again in memory, and does not log it again.
            r = httpx.post(f"{srv.url}/v1/admin/models/iris/load", json={}, headers=admin, timeout=30)
            assert r.status_code == 200, r.text
            # Item 21: the index is a read that keys guard once keys exist.
            assert httpx.post(f"{srv.url}/v2/repository/index", timeout=10).status_code == 401
            assert httpx.post(f"{srv.url}/v2/repository/index", headers=viewer, timeout=10).status_code == 200
        finally:
            srv.stop()
    finally:
        _immutable(root / "iris", on=False)
    assert not (root / "iris" / "reference.profile").exists()
    lines = assert_one_format(srv.log)
    profile_warnings = [line for line in lines if "drift reference profile: " in line]
    assert len(profile_warnings) == 1, profile_warnings
    assert " WARNING " in profile_warnings[0]
    failed = [line for line in lines if "model mlp version 2 failed to load: " in line]
    assert len(failed) == 1
    assert " WARNING " in failed[0]
    assert any(line.endswith("model mlp: serving version(s) 1") for line in lines)
    assert any(line.endswith("model iris: serving version(s) 1, 2") for line in lines)
