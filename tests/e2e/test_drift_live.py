"""Drift watching in a real server: live traffic against reference.parquet, the report, metrics and a webhook."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

from driftline.repository.demo import IRIS_FEATURES, iris_like_data

pytestmark = pytest.mark.e2e


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []  # noqa: RUF012 - shared with the test on purpose

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def send(url: str, x: np.ndarray) -> None:
    for start in range(0, len(x), 16):
        chunk = x[start : start + 16]
        body = {
            "inputs": [{"name": "x", "shape": list(chunk.shape), "datatype": "FP32", "data": chunk.ravel().tolist()}]
        }
        assert httpx.post(f"{url}/v2/models/iris/versions/1/infer", json=body, timeout=10).status_code == 200


def test_live_drift_report_metrics_and_webhook(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    x_ref, _ = iris_like_data(2000, seed=11)
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        root / "iris" / "reference.parquet"
    )
    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    config = tmp_path / "server.toml"
    config.write_text(
        f'[drift]\nwindow_rows = 400\ncheck_interval_s = 0.2\nwebhooks = ["http://127.0.0.1:{hook.server_port}/hook"]\n'
    )
    srv = start_server(root, tmp_path, {"DRIFTLINE_CONFIG": str(config)})
    try:
        same, _ = iris_like_data(400, seed=12)
        send(srv.url, same)
        time.sleep(0.5)
        report = httpx.get(f"{srv.url}/v1/models/iris/versions/1/drift", timeout=10).json()
        assert report["model"] == "iris"
        assert report["verdict"] == "ok", report

        shifted = same + np.array([1.5, 0.0, 2.0, 0.8], np.float32)
        send(srv.url, shifted)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not Hook.received:
            time.sleep(0.1)
        report = httpx.get(f"{srv.url}/v1/models/iris/versions/1/drift", timeout=10).json()
        assert report["verdict"] == "drift", report
        drifted = {f["name"] for f in report["features"] if f["verdict"] == "drift"}
        assert {"sepal_length", "petal_length"} <= drifted
        assert Hook.received, "no webhook call for the ok -> drift change"
        assert Hook.received[0]["model"] == "iris"

        html = httpx.get(f"{srv.url}/v1/models/iris/versions/1/drift?format=html", timeout=10)
        assert html.headers["content-type"].startswith("text/html")
        assert "<svg" in html.text
        metrics = httpx.get(f"{srv.url}/metrics", timeout=10).text
        assert "driftline_drift_detected{" in metrics
        assert httpx.get(f"{srv.url}/v1/models/mlp/drift", timeout=10).status_code == 404  # no reference data
    finally:
        srv.stop()
        hook.shutdown()
        hook.server_close()
