"""`driftline serve --workers 2`: one scrape of /metrics sums both workers, and so does a real Prometheus."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.conftest import Server, start_server
from tests.helpers import build_test_repository
from tests.prometheus import Prometheus, require, start_prometheus

from driftline.server.worker_metrics import METRICS, Snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
REQUESTS = 1000
JOB = "driftline"


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, iris_weights):
    """One 2-worker server with capture on (its families are in the scrape too); its per-server metrics directory
    is made under the module's own TMPDIR."""
    workdir = tmp_path_factory.mktemp("workers")
    tmp = workdir / "tmp"
    tmp.mkdir()
    root = build_test_repository(workdir / "models", iris_weights)
    env = {"TMPDIR": str(tmp), "DRIFTLINE_CAPTURE__ENABLED": "true", "DRIFTLINE_CAPTURE__DIRECTORY": str(workdir / "c")}
    srv = start_server(root, workdir, env=env, extra_args=["--workers", "2"])
    # Ready means one worker answered: wait for both to listen on their sockets too.
    deadline = time.monotonic() + 60
    while len(list(tmp.glob("driftline-metrics-*/worker-*.sock"))) < 2:
        assert time.monotonic() < deadline, srv.log.read_text()
        time.sleep(0.1)
    yield srv, tmp
    srv.stop()
    assert list(tmp.glob("driftline-metrics-*")) == []  # the parent removed its metrics directory


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, workers):
    # With the alerting rules `driftline ops rules` writes for the same repository, as an operator would load them.
    work = tmp_path_factory.mktemp("prometheus")
    rules = work / "driftline-rules.yml"
    models = workers[1].parent / "models"
    command = [sys.executable, "-m", "driftline.cli", "ops", "rules", "--repository", str(models), "--out", str(rules)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    prom = start_prometheus(work, {JOB: [workers[0].hostport]}, rule_files=[rules])
    yield prom
    prom.stop()


def metrics_dir(tmp: Path) -> Path:
    (found,) = tmp.glob("driftline-metrics-*")
    return found


def ask(sock: Path) -> Snapshot:
    """One worker's own figures, straight from its socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(METRICS)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return msgspec.msgpack.decode(data, type=Snapshot)


def own_requests(snapshot: Snapshot) -> float:
    return sum(v for f in snapshot.families for name, _, v in f.samples if name == "driftline_requests_total")


def per_worker(directory: Path) -> dict[str, float]:
    return {p.stem: own_requests(ask(p)) for p in sorted(directory.glob("worker-*.sock"))}


def scraped(server: Server, http: httpx.Client, sample: str) -> float:
    text = http.get(f"{server.url}/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == sample)


def test_one_scrape_and_prometheus_sum_every_worker(workers, prometheus: Prometheus):
    server, tmp = workers
    directory = metrics_dir(tmp)
    assert per_worker(directory) == {"worker-0": 0, "worker-1": 0}
    sent = 0
    # New connections until one is held by each worker (which one answered shows in the workers' own counts).
    clients: dict[str, httpx.Client] = {}
    for _ in range(60):
        client = httpx.Client(base_url=server.url, timeout=10)
        before = per_worker(directory)
        assert client.post("/v2/models/iris/infer", json=ROWS).status_code == 200
        sent += 1
        after = per_worker(directory)
        (answered,) = [w for w in after if after[w] != before[w]]
        if answered in clients:
            client.close()
        else:
            clients[answered] = client
        if len(clients) == 2:
            break
    assert len(clients) == 2, "every new connection went to the same worker"
    try:
        pair = list(clients.values())
        while sent < REQUESTS:
            assert pair[sent % 2].post("/v2/models/iris/infer", json=ROWS).status_code == 200
            sent += 1
    finally:
        for client in clients.values():
            client.close()
    last = time.time()
    own = per_worker(directory)
    assert sum(own.values()) == REQUESTS
    assert min(own.values()) >= (REQUESTS - 60) // 2  # both answered their share
    with httpx.Client(timeout=10) as http:
        assert scraped(server, http, "driftline_requests_total") == REQUESTS
        assert scraped(server, http, "driftline_request_latency_seconds_count") == REQUESTS
        # Triton's statistics add up too.
        stats = http.get(f"{server.url}/v2/models/stats").json()["model_stats"]
        assert sum(m["inference_stats"]["success"]["count"] for m in stats) == REQUESTS
        assert sum(m["inference_count"] for m in stats) == REQUESTS
    prometheus.wait_for_scrape_after(JOB, last)
    assert prometheus.scalar("sum(driftline_requests_total)") == REQUESTS
    assert prometheus.scalar("sum(driftline_request_latency_seconds_count)") == REQUESTS
    assert prometheus.scalar("max(driftline_metrics_workers_missing)") == 0
    # The SLI counters add up the same way, and the generated alerting rules loaded and evaluate.
    assert prometheus.scalar("sum(driftline_slo_requests_total)") == REQUESTS
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = [r for g in groups for r in g["rules"]]
    assert {r["type"] for r in loaded} >= {"alerting"}, groups
    assert all(r["health"] in ("ok", "unknown") for r in loaded), [r for r in loaded if r["health"] == "err"]
    # Process figures stay per worker.
    rss = prometheus.query("process_resident_memory_bytes")
    assert sorted(s["metric"]["worker"] for s in rss) == ["0", "1"]
    assert all(float(s["value"][1]) > 10e6 for s in rss)


def test_promtool_accepts_the_scrape(workers, tmp_path):
    promtool = require("promtool")
    server, _ = workers
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert "# TYPE driftline_capture_rows_total counter" in text
    assert "# TYPE process_resident_memory_bytes gauge" in text
    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert check.returncode == 0, (check.stdout + check.stderr).decode()
    assert (check.stdout + check.stderr).decode().strip() == ""


def test_a_replaced_worker_counters_stay_in_the_sum(workers):
    server, tmp = workers
    directory = metrics_dir(tmp)
    with httpx.Client(timeout=10) as http:
        for _ in range(5):
            assert http.post(f"{server.url}/v2/models/iris/infer", json=ROWS).status_code == 200
        total = scraped(server, http, "driftline_requests_total")
        gone = ask(directory / "worker-1.sock")
        assert own_requests(gone) > 0 or own_requests(ask(directory / "worker-0.sock")) > 0
        os.kill(gone.pid, signal.SIGTERM)  # a clean exit: uvicorn's parent starts a replacement in the slot
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if ask(directory / "worker-1.sock").pid != gone.pid:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"worker 1 was not replaced:\n{server.log.read_text()[-3000:]}")
        assert len(list(directory.glob("exited-*.msgpack"))) == 1
        assert own_requests(ask(directory / "worker-1.sock")) == 0  # the replacement starts from zero
        # The exited worker's final counters stay in the sum: no counter went backwards.
        assert scraped(server, http, "driftline_requests_total") == total
