"""What counting traffic costs the request path: the small MLP through the whole REST path in process
(``infer_rest``: decode, route, check, batcher, encode), on two data planes over one model table, one with a
:class:`Traffic` and one without, alternating in the same run at concurrency 64; and the hook alone per call.

The issue's target: with counting, at least 0.98x the requests/s. The ratio is reported (and recorded in RESULTS.md
by BENCH_REPORT), never asserted: timings do not belong in pass/fail tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pytest
from benchmarks.conftest import FULL
from benchmarks.test_bench_http import report
from tests.helpers import write_config

from driftline.http.infer import infer_rest
from driftline.repository import Repository
from driftline.security.keys import KeyRing
from driftline.serving.dataplane import DataPlane
from driftline.serving.table import ModelTable
from driftline.serving.traffic import Traffic
from driftline.store.audit import AuditLog
from driftline.store.db import open_database
from driftline.store.traffic import TrafficStore

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

# Pairs of (off, on) runs; alternated, so the shared machine's drift falls on both alike.
ROUNDS = int(os.environ.get("BENCH_TRAFFIC_ROUNDS", "10" if FULL else "2"))
REQUESTS = 20_000 if FULL else 500
CONCURRENCY = 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def _rps(plane: DataPlane, body: bytes) -> float:
    left = REQUESTS

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await infer_rest(plane, "small", None, body, None, None, (), 1 << 20)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return REQUESTS / (time.perf_counter() - start)


async def _measure(root: Path, db_path: Path, body: bytes) -> dict[str, list[float]]:
    db = open_database(db_path)
    table = ModelTable(Repository(root), asyncio.get_running_loop(), AuditLog(db))
    await table.load_all()
    traffic = Traffic(TrafficStore(db))
    planes = {
        "off": DataPlane(table, KeyRing(), require_key=False),
        "on": DataPlane(table, KeyRing(), require_key=False, traffic=traffic),
    }
    runs: dict[str, list[float]] = {"off": [], "on": []}
    try:
        await _rps(planes["off"], body)  # warm both paths up
        await _rps(planes["on"], body)
        for i in range(ROUNDS):
            for name in ("off", "on") if i % 2 == 0 else ("on", "off"):
                runs[name].append(await _rps(planes[name], body))
        traffic.flush()
        counted = sum(t.requests for t in traffic.store.totals("small", EPOCH).values())
        assert counted == REQUESTS * (ROUNDS + 1)
    finally:
        await table.close()
        db.close()
    return runs


def _hook_ns(db_path: Path) -> float:
    """One ``Traffic.record`` call, in ns (a success: the bisect included)."""
    db = open_database(db_path)
    traffic = Traffic(TrafficStore(db))
    calls = 1_000_000 if FULL else 100_000
    start = time.perf_counter_ns()
    for _ in range(calls):
        traffic.record("small", 1, True, 0.0004)
    elapsed = time.perf_counter_ns() - start
    db.close()
    return elapsed / calls


@pytest.mark.benchmark(group="traffic")
def test_traffic_overhead_at_64(benchmark, mlp_models, tmp_path):
    root = tmp_path / "models"
    (root / "small" / "1").mkdir(parents=True)
    shutil.copy(mlp_models["small"], root / "small" / "1" / "model.onnx")
    write_config(root / "small", "max_batch_size = 64\n")
    x = np.random.default_rng(1).normal(size=32).astype(np.float32)
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 32], "datatype": "FP32", "data": x.tolist()}]}).encode()
    runs: dict[str, list[float]] = {}

    def measure() -> None:
        runs.update(asyncio.run(_measure(root, tmp_path / "bench.db", body)))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    pairs = [on / off for off, on in zip(runs["off"], runs["on"], strict=True)]
    hook = _hook_ns(tmp_path / "hook.db")
    benchmark.extra_info.update(off_rps=runs["off"], on_rps=runs["on"], pairs=pairs, hook_ns=hook)
    report(
        f"| traffic counting | c{CONCURRENCY} | off {max(runs['off']):.0f} | on {max(runs['on']):.0f} "
        f"| best/best {max(runs['on']) / max(runs['off']):.3f} | median pair {statistics.median(pairs):.3f} "
        f"| pairs {' / '.join(f'{p:.3f}' for p in pairs)} | hook {hook:.0f} ns |"
    )
