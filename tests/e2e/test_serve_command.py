"""`driftline serve` as the README runs it: the demo repository on first run, and several worker processes."""

from __future__ import annotations

import httpx
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

pytestmark = pytest.mark.e2e

IRIS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [6.7, 3.0, 5.2, 2.3]}]}


def test_first_run_builds_and_serves_the_demo_repository(tmp_path):
    srv = start_server(tmp_path / "demo-models", tmp_path)
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


def test_several_worker_processes(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    srv = start_server(root, tmp_path, extra_args=["--workers", "2"])
    try:
        for _ in range(20):
            assert httpx.post(f"{srv.url}/v2/models/iris/infer", json=IRIS, timeout=10).status_code == 200
    finally:
        srv.stop()
