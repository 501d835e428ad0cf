"""HTTP throughput and latency of the whole request path, driven by wrk on 127.0.0.1, beside in-process onnxruntime.

Each case starts from a warm server, runs wrk for a bounded time at a fixed concurrency with batch-1 JSON requests,
and records requests/s, p50/p99 latency and the server's CPU time per request (from /proc). Set
BENCH_REPORT=FILE to collect a markdown table of every case.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from benchmarks.conftest import FULL
from tests.e2e.conftest import Server, start_server
from tests.helpers import write_config

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

DURATION = 10 if FULL else 1
WRK = shutil.which("wrk")
LUA = """
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory, mlp_models: dict[str, Path]):
    root = tmp_path_factory.mktemp("http-bench") / "models"
    for name, path in mlp_models.items():
        for batching, cfg in (("on", "max_batch_size = 64\n"), ("off", "max_batch_size = 0\n")):
            folder = root / f"{name}_{batching}"
            (folder / "1").mkdir(parents=True)
            shutil.copy(path, folder / "1" / "model.onnx")
            write_config(folder, cfg)
    server = start_server(root, root.parent)
    yield server
    server.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_latency(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    assert match, text
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(url: str, concurrency: int, body_file: Path) -> tuple[str, dict[str, float]]:
    """wrk's closed loop posting ``body_file`` to ``url`` at ``concurrency`` for DURATION s: its output, and the
    requests/s, p50 and p99 (ms) and request count it printed."""
    assert WRK is not None
    script = body_file.with_suffix(".lua")
    script.write_text(LUA)
    out = subprocess.run(
        [WRK, f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{DURATION}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        env={**os.environ, "WRK_BODY": str(body_file)},
        timeout=DURATION + 60,
        check=True,
    ).stdout
    rps, requests = re.search(r"Requests/sec:\s+([\d.]+)", out), re.search(r"(\d+) requests in", out)
    assert rps is not None, out
    assert requests is not None, out
    return out, {
        "rps": float(rps.group(1)),
        "p50_ms": parse_latency(out, "50"),
        "p99_ms": parse_latency(out, "99"),
        "requests": int(requests.group(1)),
    }


def run_wrk(server: Server, model: str, concurrency: int, body_file: Path) -> dict[str, float]:
    cpu_before = cpu_seconds(server.proc.pid)
    out, figures = wrk(f"{server.url}/v2/models/{model}/infer", concurrency, body_file)
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert errors is None, out
    return {**figures, "server_cpu_ms_per_req": 1000 * cpu / max(figures["requests"], 1)}


def ort_direct_us(path: Path, rows: int) -> float:
    session = ort.InferenceSession(str(path))
    inputs = session.get_inputs()[0]
    x = np.random.default_rng(0).normal(size=(rows, inputs.shape[1])).astype(np.float32)
    for _ in range(20):
        session.run(None, {inputs.name: x})
    n = 2000 if FULL else 200
    start = time.perf_counter()
    for _ in range(n):
        session.run(None, {inputs.name: x})
    return (time.perf_counter() - start) / n * 1e6


def report(row: str) -> None:
    target = os.environ.get("BENCH_REPORT")
    if target:
        with Path(target).open("a") as fh:
            fh.write(row + "\n")


@pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk; `make test` installs it)")
@pytest.mark.parametrize("concurrency", [1, 16, 64])
@pytest.mark.parametrize("batching", ["on", "off"])
@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.benchmark(group="http")
def test_http_throughput(benchmark, http_server, mlp_models, tmp_path, size, batching, concurrency):
    inputs = {"small": 32, "large": 256}[size]
    x = np.random.default_rng(1).normal(size=inputs).astype(np.float32)
    body = tmp_path / "body.json"
    body.write_text(
        json.dumps({"inputs": [{"name": "x", "shape": [1, inputs], "datatype": "FP32", "data": x.tolist()}]})
    )
    model = f"{size}_{batching}"
    result = benchmark.pedantic(run_wrk, args=(http_server, model, concurrency, body), rounds=1, iterations=1)
    direct = ort_direct_us(mlp_models[size], 1)
    benchmark.extra_info.update(result, ort_direct_batch1_us=direct)
    report(
        f"| {size} | {batching} | {concurrency} | {result['rps']:.0f} | {result['p50_ms']:.2f} "
        f"| {result['p99_ms']:.2f} | {result['server_cpu_ms_per_req']:.3f} | {direct:.1f} |"
    )
    assert result["requests"] > 0
