"""The drain figures of docs/operations.md: failed requests through a real HAProxy when one of two replicas is
stopped with SIGTERM, per ``http.drain_delay_s`` and with or without HAProxy's retries.

Run: `.venv/bin/python benchmarks/drain_runs.py OUT_DIR` (about 40 s a run on 2 cores; needs Debian's `haproxy`).
Each run: two `driftline serve` replicas on 127.0.0.1, HAProxy health-checking `/v2/health/ready` (`inter 1s fall 2
rise 2`), four clients posting iris inferences on keep-alive connections for 1 s, SIGTERM to one replica, the load
going on until 1 s after it exited. One JSON line per run.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.conftest import free_port, start_server
from tests.helpers import build_test_repository

ROWS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
RUNS = [(0.0, False), (1.0, False), (3.0, False), (0.0, True), (3.0, True)]  # (drain_delay_s, haproxy retries)
CLIENTS = 4
MAX_REQUESTS = 20_000  # per client


def haproxy_config(port: int, servers: list[str], retries: bool) -> str:
    retry = "retries 3\n    option redispatch" if retries else "retries 0"
    lines = [f"    server s{i} {hostport} check" for i, hostport in enumerate(servers)]
    return (
        f"""global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    {retry}
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /v2/health/ready
    default-server inter 1s fall 2 rise 2
"""
        + "\n".join(lines)
        + "\n"
    )


def run(delay: float, retries: bool, work: Path) -> dict[str, object]:
    rng = np.random.default_rng(0)
    root = build_test_repository(work / "models", (rng.normal(size=(4, 3)).astype(np.float32), np.zeros(3, np.float32)))
    env = {"DRIFTLINE_HTTP__DRAIN_DELAY_S": str(delay)}
    replicas = []
    for name in ("a", "b"):
        (work / name).mkdir()
        replicas.append(start_server(root, work / name, env))
    port = free_port()
    (work / "haproxy.cfg").write_text(haproxy_config(port, [r.hostport for r in replicas], retries))
    haproxy = subprocess.Popen([shutil.which("haproxy") or "haproxy", "-f", str(work / "haproxy.cfg"), "-db"])
    url = f"http://127.0.0.1:{port}"
    results: list[int | str] = []
    stop = threading.Event()
    try:
        time.sleep(3)  # both replicas up in HAProxy's view (rise 2 x inter 1s)

        def load() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                for _ in range(MAX_REQUESTS):
                    if stop.is_set():
                        return
                    try:
                        results.append(client.post("/v2/models/iris/infer", json=ROWS).status_code)
                    except httpx.HTTPError as exc:
                        results.append(type(exc).__name__)

        threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1)
        start = time.monotonic()
        replicas[0].proc.send_signal(signal.SIGTERM)
        code = replicas[0].proc.wait(60)
        stopped = time.monotonic() - start
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(60)
    finally:
        stop.set()
        haproxy.terminate()
        haproxy.wait(10)
        for replica in replicas:
            replica.stop()
    failed = [r for r in results if r != 200]
    return {
        "drain_delay_s": delay,
        "haproxy_retries": retries,
        "requests": len(results),
        "failed": len(failed),
        "failures": sorted({str(f) for f in failed}),
        "exit": code,
        "stop_s": round(stopped, 2),
    }


def main() -> None:
    out = Path(sys.argv[1])
    for i, (delay, retries) in enumerate(RUNS):
        work = out / f"run-{i}"
        work.mkdir(parents=True)
        print(json.dumps(run(delay, retries, work)), flush=True)


if __name__ == "__main__":
    main()
