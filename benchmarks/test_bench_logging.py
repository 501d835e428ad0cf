"""What JSON access logs cost the inference route: requests/s at concurrency 64 with JSON logs at the default
sample (``logs.access_sample = 0.01``) against a server that writes no access line, in the same run.

Both servers serve the small MLP with batching; wrk runs alternately against each (off, on, on, off, ...) so a
drift of the machine's speed hits both, and each side's best round is compared. BENCH_FULL=1 asserts the ratio
(>= 0.97); the quick pass only proves the benchmark runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from benchmarks.conftest import FULL
from benchmarks.test_bench_http import WRK, report, run_wrk
from tests.e2e.conftest import Server, start_server
from tests.helpers import write_config

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

ROUNDS = 4 if FULL else 1
CONCURRENCY = 64


def _server(root: Path, small: Path, env: dict[str, str], args: list[str]) -> Server:
    folder = root / "models" / "small"
    (folder / "1").mkdir(parents=True)
    shutil.copy(small, folder / "1" / "model.onnx")
    write_config(folder, "max_batch_size = 64\n")
    return start_server(root / "models", root, env, extra_args=args)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, mlp_models: dict[str, Path]):
    on = _server(tmp_path_factory.mktemp("logs-on"), mlp_models["small"], {}, ["--log-format", "json"])
    off = _server(
        tmp_path_factory.mktemp("logs-off"),
        mlp_models["small"],
        {"DRIFTLINE_LOGS__ACCESS_SAMPLE": "0", "DRIFTLINE_LOGS__OTHER_ROUTES": "false"},
        [],
    )
    yield on, off
    on.stop()
    off.stop()


@pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk; `make test` installs it)")
@pytest.mark.benchmark(group="logging")
def test_json_access_logs_cost_under_3_percent(benchmark, servers, tmp_path: Path) -> None:
    on, off = servers
    x = np.random.default_rng(1).normal(size=32).astype(np.float32)
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"inputs": [{"name": "x", "shape": [1, 32], "datatype": "FP32", "data": x.tolist()}]}))

    def rounds() -> dict[str, float]:
        seen: dict[str, list[float]] = {"on": [], "off": []}
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        requests = 0
        for i in range(ROUNDS):
            # Alternate which side goes first: a side that always ran second would meet a different machine.
            for side, server in (("off", off), ("on", on))[:: 1 if i % 2 == 0 else -1]:
                result = run_wrk(server, "small", CONCURRENCY, body)
                seen[side].append(result["rps"])
                cpu[side].append(result["server_cpu_ms_per_req"])
                requests += int(result["requests"]) if side == "on" else 0
        print("rounds (req/s):", seen, "server CPU ms per request:", cpu)
        return {
            "rps_on": max(seen["on"]),
            "rps_off": max(seen["off"]),
            "cpu_ms_on": min(cpu["on"]),
            "cpu_ms_off": min(cpu["off"]),
            "requests_on": requests,
        }

    result = benchmark.pedantic(rounds, rounds=1, iterations=1)
    ratio = result["rps_on"] / result["rps_off"]
    access_lines = sum('"driftline.access"' in line for line in on.log.read_text().splitlines())
    benchmark.extra_info.update(result, ratio=ratio, access_lines=access_lines)
    report(
        f"| logging | json 0.01 vs off | {CONCURRENCY} | {result['rps_on']:.0f} / {result['rps_off']:.0f} "
        f"| {ratio:.3f} |"
    )
    print(
        f"logs on {result['rps_on']:.0f} req/s, off {result['rps_off']:.0f} req/s, ratio {ratio:.3f}, "
        f"{access_lines} access lines for {result['requests_on']:.0f} requests"
    )
    assert access_lines > 0
    if FULL:
        assert ratio >= 0.97, result
