"""Draining behind a load balancer: at SIGTERM readiness answers 503 at once, liveness stays 200, requests are
still answered for ``http.drain_delay_s``, then the server stops, finishing what is in flight, and exits 0."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.e2e.conftest import Server, start_server
from tests.helpers import build_test_repository, metric, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
LOAD_THREADS = 4
MAX_REQUESTS = 2000  # per thread: the load is bounded in count as well as in time
MAX_LOAD_S = 15.0


def unlabelled(server: Server, name: str) -> float | None:
    """One sample without labels from the server's scrape (None when absent)."""
    for line in httpx.get(f"{server.url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def draining_server(
    tmp_path, iris_weights, delay_s: float, extra_args: list[str] | None = None, tmp: Path | None = None
) -> Server:
    """A server draining for ``delay_s``; ``tmp``: its TMPDIR, where several workers make their metrics directory."""
    root = build_test_repository(tmp_path / "models", iris_weights)
    env = {"DRIFTLINE_HTTP__DRAIN_DELAY_S": str(delay_s), "TMPDIR": str(tmp or tmp_path)}
    return start_server(root, tmp_path, env, extra_args=extra_args)


def wait_unready(server: Server, since: float, timeout: float = 5.0) -> tuple[float, dict[str, object]]:
    """Seconds from ``since`` until readiness (asked on a new connection each time) answers 503, and its body."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.url}/v2/health/ready", timeout=2)
        if answer.status_code == 503:
            return time.monotonic() - since, answer.json()
        assert answer.status_code == 200
        time.sleep(0.005)
    raise AssertionError(f"still ready {timeout} s after SIGTERM:\n{server.log.read_text()[-3000:]}")


def wait_exit(server: Server, timeout: float) -> int:
    try:
        return server.proc.wait(timeout)
    except Exception:
        server.stop()
        raise


def test_sigterm_turns_unready_serves_through_the_delay_and_exits_0(tmp_path, iris_weights):
    delay = 2.0
    server = draining_server(tmp_path, iris_weights, delay)
    stop = threading.Event()
    results: list[tuple[float, int | str]] = []  # (seconds after SIGTERM it was sent, status or error)
    signalled = [0.0]

    def load() -> None:
        start = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(MAX_REQUESTS):
                if stop.is_set() or time.monotonic() - start > MAX_LOAD_S:
                    return
                sent = time.monotonic()
                try:
                    outcome: int | str = client.post("/v2/models/iris/infer", json=ROWS).status_code
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                results.append((sent - signalled[0] if signalled[0] else -1.0, outcome))

    try:
        with ThreadPoolExecutor(LOAD_THREADS) as pool:
            loads = [pool.submit(load) for _ in range(LOAD_THREADS)]
            time.sleep(0.5)
            signalled[0] = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            unready_after, body = wait_unready(server, signalled[0])
            assert httpx.get(f"{server.url}/v2/health/live", timeout=2).status_code == 200
            assert httpx.get(f"{server.url}/v2/models/iris/ready", timeout=2).status_code == 200  # it does serve
            assert unlabelled(server, "driftline_draining") == 1
            # The load goes on for most of the delay, then stops before the listener closes; what it sent last is
            # in flight when the shutdown begins.
            time.sleep(max(0.0, signalled[0] + delay - 0.3 - time.monotonic()))
            stop.set()
            for f in loads:
                f.result()
        code = wait_exit(server, delay + 30)
        took = time.monotonic() - signalled[0]
    finally:
        stop.set()
        server.stop()
    log = server.log.read_text()
    assert code == 0, log[-3000:]
    assert unready_after < 0.5, unready_after  # about 40 ms measured; a loaded machine takes its time
    assert body["ready"] is False
    assert body["draining"] is True
    assert "draining after SIGTERM" in str(body["reason"])
    during = [outcome for sent, outcome in results if sent >= 0]
    assert len(during) > 20, len(during)  # requests sent during the delay ...
    assert [o for _, o in results if o != 200] == []  # ... and before it: every one answered 200
    assert delay <= took < delay + 20, took
    assert "draining after SIGTERM: /v2/health/ready answers 503" in log
    assert f"drain delay of {delay:g} s over: shutting down" in log
    assert "Application shutdown complete" in log


def test_every_worker_turns_unready_and_a_second_sigterm_reaches_them(tmp_path, iris_weights):
    tmp = Path(tempfile.mkdtemp(prefix="drain-", dir="/tmp"))  # short: the workers' sockets fit in a unix path
    server = draining_server(tmp_path, iris_weights, 30.0, ["--workers", "2"], tmp)
    try:
        # Ready means one worker answered: wait for both to listen on their metrics sockets too (a worker still
        # starting when SIGTERM comes stops once started, without draining: it never served).
        deadline = time.monotonic() + 60
        while len(list(tmp.glob("driftline-metrics-*/worker-*.sock"))) < 2:
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)  # to the parent only, as Kubernetes sends it
        unready_after, _ = wait_unready(server, signalled)
        # Each worker's own gauge, summed by whichever worker answers the scrape: both are draining.
        assert unlabelled(server, "driftline_draining") == 2
        answers = [httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code for _ in range(20)]
        assert answers == [503] * 20
        assert httpx.get(f"{server.url}/v2/models/iris/infer", timeout=2).status_code == 405  # still answering
        time.sleep(max(0.0, signalled + 1.2 - time.monotonic()))  # past the window where a repeat is the same stop
        cut = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = wait_exit(server, 20)
        took = time.monotonic() - cut
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    log = server.log.read_text()
    assert code == 0, log[-3000:]
    assert unready_after < 1.0, unready_after
    assert took < 10, took  # not the 30 s delay
    assert log.count("drain delay cut short after") == 2, log[-3000:]


def heavy_request() -> tuple[bytes, dict[str, str]]:
    """512 rows for ``heavy`` as binary tensors: cheap to decode, tens of milliseconds to run."""
    x = np.random.default_rng(0).normal(size=(512, 256)).astype(np.float32)
    tensor = {"name": "x", "shape": list(x.shape), "datatype": "FP32", "parameters": {"binary_data_size": x.nbytes}}
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + x.tobytes(), {"Inference-Header-Content-Length": str(len(header))}


def test_a_second_sigterm_cuts_the_delay_short_not_the_requests_in_flight(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights, slow=True)
    # One instance, a deep queue: requests wait behind each other (as in test_metrics_and_lifecycle's shutdown test).
    write_config(root / "heavy", "max_batch_size = 512\n[batching]\nmax_queue_size = 64\nmax_queue_delay_us = 0\n")
    server = start_server(root, tmp_path, {"DRIFTLINE_HTTP__DRAIN_DELAY_S": "30"})
    payload, headers = heavy_request()
    sent = 8
    try:
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        wait_unready(server, signalled)
        time.sleep(max(0.0, signalled + 1.2 - time.monotonic()))  # past the window where a repeat is the same stop

        def post() -> int:
            url = f"{server.url}/v2/models/heavy/infer"
            return httpx.post(url, content=payload, headers=headers, timeout=60).status_code

        with ThreadPoolExecutor(sent) as pool:
            futures = [pool.submit(post) for _ in range(sent)]
            # Every request accepted, some still queued behind the busy instance, when the second signal comes.
            seen = queued = 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (queued < 1 or seen < sent):
                text = httpx.get(f"{server.url}/metrics", timeout=5).text
                labels = {"model": "heavy", "version": "1"}
                queued = int(metric(text, "driftline_queue_depth", labels) or 0)
                busy = int(metric(text, "driftline_busy_instances", labels) or 0)
                done = int(
                    metric(text, "driftline_requests_total", {**labels, "outcome": "success", "code": "200"}) or 0
                )
                seen = queued + busy + done
            cut = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            statuses = [f.result() for f in futures]
        code = wait_exit(server, 20)
        took = time.monotonic() - cut
    finally:
        server.stop()
    log = server.log.read_text()
    assert code == 0, log[-3000:]
    assert (seen, queued >= 1) == (sent, True), (seen, queued)
    assert statuses == [200] * sent  # the delay was cut short, not the requests in flight
    assert took < 10, took  # not the 30 s delay
    assert "drain delay cut short after" in log
