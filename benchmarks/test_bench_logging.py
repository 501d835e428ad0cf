"""What JSON access logs cost the inference route: requests/s at concurrency 64 with JSON logs at the default
sample (``logs.access_sample = 0.01``) against a server that writes no access line, in the same run.

Both servers serve the small MLP with batching; wrk runs alternately against each (off, on, off, on, ...) so a
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

ROUNDS = 3 if FULL else 1
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
        best = {"on": 0.0, "off": 0.0}
        requests = {"on": 0, "off": 0}
        for _ in range(ROUNDS):
            for side, server in (("off", off), ("on", on)):
                result = run_wrk(server, "small", CONCURRENCY, body)
                best[side] = max(best[side], result["rps"])
                requests[side] += int(result["requests"])
        return {"rps_on": best["on"], "rps_off": best["off"], "requests_on": requests["on"]}

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
