"""Traffic counts on a real server: per version under a canary, routed or named, failures counted (a deadline),
refusals not; saved every few seconds while serving and at shutdown, summed over a restart and over worker
processes, read back from the server's own database."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_test_repository, write_server_config

from driftline.store.db import open_database
from driftline.store.traffic import TrafficStore

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROWS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def _since() -> datetime:
    return datetime.fromtimestamp(int(time.time() // 60) * 60, UTC)


def _totals(workdir, since: datetime, routed: bool | None = True) -> dict[int, tuple[int, int, int]]:
    """(requests, errors, latencies) per version, as the server stored them."""
    db = open_database(workdir / "driftline.db")
    try:
        totals = TrafficStore(db).totals("iris", since, routed=routed)
    finally:
        db.close()
    return {v: (t.requests, t.errors, sum(t.latency_counts)) for v, t in sorted(totals.items())}


def _infer(http: httpx.Client, path: str = "/v2/models/iris/infer", params: dict | None = None) -> httpx.Response:
    return http.post(path, json=dict(ROWS, parameters=params) if params else ROWS)


def test_counts_per_version_saved_while_serving_at_shutdown_and_over_a_restart(tmp_path, iris_weights):
    since = _since()
    root = build_test_repository(tmp_path / "models", iris_weights)
    config = write_server_config(tmp_path / "server.toml")
    env = {"DRIFTLINE_CONFIG": str(config)}
    server = start_server(root, tmp_path, env)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.put(
                "/v1/admin/models/iris/routing", json={"canary": {"target": "1", "percent": 30}}, headers=HEADERS
            )
            assert r.status_code == 200, r.text
            answered = [_infer(http).json()["model_version"] for _ in range(60)]
            assert all(_infer(http, "/v2/models/iris/versions/2/infer").status_code == 200 for _ in range(5))
            for _ in range(3):  # 1 µs: past by the time a worker takes it from the queue
                assert _infer(http, "/v2/models/iris/versions/1/infer", {"timeout": 1}).status_code == 504
            for _ in range(2):  # the request's own parameter: refused, not counted against the version
                assert _infer(http, "/v2/models/iris/versions/1/infer", {"priority": 99}).status_code == 400
    finally:
        server.stop()
    routed = {1: answered.count("1"), 2: answered.count("2")}
    assert 0 < routed[1] < 60
    assert _totals(tmp_path, since) == {v: (n, 0, n) for v, n in routed.items()}
    assert _totals(tmp_path, since, routed=False) == {1: (3, 3, 0), 2: (5, 0, 5)}

    again = start_server(root, tmp_path, env)  # the stored canary routes again; a new process adds its own rows
    try:
        with httpx.Client(base_url=again.url, timeout=10) as http:
            answered += [_infer(http).json()["model_version"] for _ in range(10)]
        deadline = time.monotonic() + 20
        for _ in range(200):  # saved every 5 s while serving: another process sees it without a shutdown
            if sum(n for n, _, _ in _totals(tmp_path, since).values()) == 70 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert _totals(tmp_path, since) == {int(v): (answered.count(v), 0, answered.count(v)) for v in "12"}
    finally:
        again.stop()


@pytest.mark.slow
def test_worker_processes_each_add_their_counts(tmp_path, iris_weights):
    since = _since()
    root = build_test_repository(tmp_path / "models", iris_weights)
    server = start_server(root, tmp_path, extra_args=["--workers", "2"])
    try:
        for _ in range(40):  # new connections spread over both workers
            with httpx.Client(base_url=server.url, timeout=10) as fresh:
                assert _infer(fresh).status_code == 200
    finally:
        server.stop()
    assert _totals(tmp_path, since) == {2: (40, 0, 40)}
    db = open_database(tmp_path / "driftline.db")
    try:
        processes = db.query("SELECT COUNT(DISTINCT process) FROM traffic")[0][0]
    finally:
        db.close()
    assert 1 <= processes <= 2
