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


def test_symlinks_swapped_before_a_job_runs_cannot_leave_the_roots(tmp_path, iris_weights):
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    root = build_test_repository(work / "models", iris_weights)
    write_input(work / "big.parquet", 200_000)
    write_input(work / "in.parquet", 300)
    write_input(outside / "secret.parquet", 300)
    (work / "in-link.parquet").symlink_to(work / "in.parquet")
    (work / "real-out").mkdir()
    (work / "out-link").symlink_to(work / "real-out", target_is_directory=True)
    srv = start_server(root, work)
    try:
        body = {"model": "iris", "passthrough": ["id"], "chunk_rows": 500}
        post = lambda **kw: httpx.post(f"{srv.url}/v1/jobs", json={**body, **kw}, timeout=10)  # noqa: E731
        # One long job keeps the runner busy, so the next ones wait in the queue with their paths checked.
        blocker = post(inputs=["big.parquet"], output="big-out").json()["id"]
        wait_for(srv.url, blocker, {"running"})
        reads = post(inputs=["in-link.parquet"], output="out-a")
        writes = post(inputs=["in.parquet"], output="out-link")
        assert reads.status_code == writes.status_code == 202, (reads.text, writes.text)
        # Both links now lead out of the roots: one to a file to read, one to a directory to write.
        (work / "in-link.parquet").unlink()
        (work / "in-link.parquet").symlink_to(outside / "secret.parquet")
        (work / "out-link").unlink()
        (work / "out-link").symlink_to(outside, target_is_directory=True)
        assert httpx.delete(f"{srv.url}/v1/jobs/{blocker}", timeout=5).status_code == 200
        for job_id in (reads.json()["id"], writes.json()["id"]):
            job = wait_for(srv.url, job_id, {"succeeded", "failed"})
            assert job["state"] == "failed", job
            assert "outside the allowed job roots" in job["error"]
        assert sorted(p.name for p in outside.iterdir()) == ["secret.parquet"]
        assert not list(work.glob("out-a/part-*"))

        nul = post(inputs=["in\u0000.parquet"], output="o")
        assert nul.status_code == 400, nul.text
        assert "inputs[0]" in nul.json()["error"]
        nul = post(inputs=["in.parquet"], output="o\u0000")
        assert nul.status_code == 400, nul.text
        assert nul.json()["error"].startswith("output:")
    finally:
        srv.stop()
