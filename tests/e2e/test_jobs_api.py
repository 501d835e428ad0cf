"""Jobs over HTTP against a real server: run, watch, cancel, confinement, and resume after a restart."""

from __future__ import annotations

import time

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

pytestmark = pytest.mark.e2e


def wait_for(url: str, job_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=5).json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def write_input(path, rows: int) -> pl.DataFrame:
    x = np.random.default_rng(0).normal(5, 1.5, (rows, 4)).astype(np.float32)
    df = pl.DataFrame({"id": np.arange(rows), **{f"f{i}": x[:, i] for i in range(4)}})
    df.write_parquet(path)
    return df


def test_submit_watch_list_and_confinement(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    write_input(tmp_path / "in.parquet", 5000)
    srv = start_server(root, tmp_path)
    try:
        body = {"model": "iris:1", "inputs": ["in.parquet"], "output": "out", "passthrough": ["id"], "chunk_rows": 1000}
        r = httpx.post(f"{srv.url}/v1/jobs", json=body, timeout=10)
        assert r.status_code == 202, r.text
        job = wait_for(srv.url, r.json()["id"], {"succeeded", "failed"})
        assert job["state"] == "succeeded", job
        assert (job["rows_done"], job["rows_total"]) == (5000, 5000)
        assert job["spec"]["version"] == "1"
        assert pl.read_parquet(tmp_path / "out" / "part-*.parquet")["id"].sort().to_list() == list(range(5000))
        assert [j["id"] for j in httpx.get(f"{srv.url}/v1/jobs", timeout=5).json()] == [job["id"]]

        outside = httpx.post(f"{srv.url}/v1/jobs", json={**body, "output": "/tmp/elsewhere"}, timeout=10)
        assert outside.status_code == 400
        assert "outside the allowed job roots" in outside.json()["error"]
        escape = httpx.post(f"{srv.url}/v1/jobs", json={**body, "inputs": ["../*.parquet"], "output": "o2"}, timeout=10)
        assert escape.status_code == 400
        missing = httpx.post(f"{srv.url}/v1/jobs", json={**body, "model": "nope"}, timeout=10)
        assert missing.status_code == 404
        bad = httpx.post(f"{srv.url}/v1/jobs", json={**body, "batch_size": 0, "output": "o3"}, timeout=10)
        assert bad.status_code == 400
        assert "batch_size" in bad.json()["error"]
        assert httpx.get(f"{srv.url}/v1/jobs/unknown", timeout=5).status_code == 404
        assert httpx.delete(f"{srv.url}/v1/jobs/{job['id']}", timeout=5).status_code == 400  # already finished
    finally:
        srv.stop()


@pytest.mark.slow
def test_a_job_interrupted_by_a_restart_resumes(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    data = write_input(tmp_path / "in.parquet", 300_000)
    body = {"model": "iris", "inputs": ["in.parquet"], "output": "out", "passthrough": ["id"], "chunk_rows": 500}
    srv = start_server(root, tmp_path)
    try:
        job_id = httpx.post(f"{srv.url}/v1/jobs", json=body, timeout=10).json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = httpx.get(f"{srv.url}/v1/jobs/{job_id}", timeout=5).json()
            if job["state"] == "running" and job["rows_done"] > 0:
                break
            time.sleep(0.02)
    finally:
        srv.stop()
    parts_before = len(list((tmp_path / "out").glob("part-*.parquet")))
    assert 0 < parts_before < 600
    srv = start_server(root, tmp_path)
    try:
        job = wait_for(srv.url, job_id, {"succeeded", "failed"}, timeout=180)
        assert job["state"] == "succeeded", job
    finally:
        srv.stop()
    ids = pl.read_parquet(tmp_path / "out" / "part-*.parquet")["id"]
    assert len(ids) == len(data)
    assert ids.n_unique() == len(data)


def test_cancel_a_running_job(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    write_input(tmp_path / "in.parquet", 200_000)
    srv = start_server(root, tmp_path)
    try:
        body = {"model": "iris", "inputs": ["in.parquet"], "output": "out", "passthrough": ["id"], "chunk_rows": 500}
        job_id = httpx.post(f"{srv.url}/v1/jobs", json=body, timeout=10).json()["id"]
        wait_for(srv.url, job_id, {"running"})
        r = httpx.delete(f"{srv.url}/v1/jobs/{job_id}", timeout=5)
        assert r.status_code == 200
        job = wait_for(srv.url, job_id, {"cancelled", "succeeded"})
        assert job["state"] == "cancelled"
    finally:
        srv.stop()
