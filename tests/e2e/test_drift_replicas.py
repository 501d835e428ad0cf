"""Drift across replicas: 3 `driftline serve` processes on one store report what one process given all the traffic
reports, field for field, also after one of them shut down."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import Server, start_server
from tests.helpers import build_test_repository

from driftline.drift import ReferenceProfile
from driftline.repository.demo import IRIS_FEATURES, iris_like_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DRIFT = "/v1/models/iris/versions/1/drift"


def infer(url: str, chunk: np.ndarray) -> None:
    body = {"inputs": [{"name": "x", "shape": list(chunk.shape), "datatype": "FP32", "data": chunk.ravel().tolist()}]}
    assert httpx.post(f"{url}/v2/models/iris/versions/1/infer", json=body, timeout=10).status_code == 200


def report(server: Server, rows: int, timeout: float = 15) -> dict[str, object]:
    """The server's drift report once it covers ``rows`` rows (the replicas save theirs every second)."""
    deadline = time.monotonic() + timeout
    while True:
        got = httpx.get(f"{server.url}{DRIFT}", timeout=10).json()
        if got["n_cur_rows"] == rows or time.monotonic() > deadline:
            assert got["n_cur_rows"] == rows, got
            got.pop("created")
            return got
        time.sleep(0.2)


def test_three_replicas_report_what_one_process_reports(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    x_ref, _ = iris_like_data(2000, seed=11)
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        root / "iris" / "reference.parquet"
    )
    assert ReferenceProfile.for_model(root / "iris") is not None  # built once, read by every server
    config = tmp_path / "server.toml"
    config.write_text("[drift]\npersist_interval_s = 1.0\ncheck_interval_s = 0\n")
    env = {"DRIFTLINE_CONFIG": str(config)}
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    shared.mkdir()
    alone.mkdir()
    with ThreadPoolExecutor(4) as pool:
        starting = [pool.submit(start_server, root, shared, env) for _ in range(3)]
        starting.append(pool.submit(start_server, root, alone, env))
        servers = []
        for f in starting:
            try:
                servers.append(f.result())
            except Exception:
                for s in servers:
                    s.stop()
                raise
    *replicas, single = servers
    try:
        x, _ = iris_like_data(600, seed=12)
        x[300:] += np.array([1.5, 0.0, 2.0, 0.8], np.float32)  # the second half drifts
        chunks = np.array_split(x, 40)  # uneven sizes, 15 rows each or so
        for i, chunk in enumerate(chunks):
            infer(replicas[i % 3].url, chunk)
            infer(single.url, chunk)
        expected = report(single, 600)
        assert expected["verdict"] == "drift"
        for replica in replicas:
            assert report(replica, 600) == expected

        # A rolling restart: the traffic a replica took just before it stopped still counts.
        more, _ = iris_like_data(90, seed=13)
        for chunk in np.array_split(more, 6):
            infer(replicas[2].url, chunk)
            infer(single.url, chunk)
        # uvicorn re-raises SIGTERM after a clean shutdown, so the exit status is -SIGTERM.
        assert replicas[2].stop() in (0, -15), replicas[2].log.read_text()
        assert report(replicas[0], 690) == report(single, 690)
    finally:
        for s in servers:
            s.stop()
