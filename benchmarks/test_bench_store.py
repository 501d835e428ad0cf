"""What the shared store costs the inference route: requests/s at concurrency 64 with PostgreSQL as the store
against SQLite, in the same run. Nothing on the request path reads or writes the store (aliases and routes are
in memory, counters are saved every few seconds on a thread), so the two should not differ.

Both servers serve the small MLP with batching, with the default traffic counters saved to their store and
request capture on (its segment index is a store write per segment). wrk runs alternately against each so a drift
of the machine's speed hits both; each side's best round is compared. BENCH_FULL=1 asserts the ratio (>= 0.97);
the quick pass only proves the benchmark runs.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from benchmarks.conftest import FULL
from benchmarks.test_bench_http import WRK, report, run_wrk
from tests.e2e.conftest import Server, start_server
from tests.helpers import write_config

from driftline.store.db import open_database

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

ROUNDS = 4 if FULL else 1
CONCURRENCY = 64


def _server(root: Path, small: Path, database: str) -> Server:
    folder = root / "models" / "small"
    (folder / "1").mkdir(parents=True)
    shutil.copy(small, folder / "1" / "model.onnx")
    write_config(folder, "max_batch_size = 64\n\n[capture]\nenabled = true\nsample_rate = 1.0\n")
    return start_server(root / "models", root, {"DRIFTLINE_DATABASE": database})


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, mlp_models: dict[str, Path], postgres):
    pg_root = tmp_path_factory.mktemp("store-pg")
    sqlite_root = tmp_path_factory.mktemp("store-sqlite")
    url = postgres.new_database()
    pg = _server(pg_root, mlp_models["small"], url)
    sqlite = _server(sqlite_root, mlp_models["small"], str(sqlite_root / "driftline.db"))
    yield pg, sqlite, url
    pg.stop()
    sqlite.stop()


@pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk; `make test` installs it)")
@pytest.mark.benchmark(group="store")
def test_postgresql_costs_the_request_path_nothing(benchmark, servers, tmp_path: Path) -> None:
    pg, sqlite, url = servers
    x = np.random.default_rng(1).normal(size=32).astype(np.float32)
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"inputs": [{"name": "x", "shape": [1, 32], "datatype": "FP32", "data": x.tolist()}]}))

    def rounds() -> dict[str, float]:
        seen: dict[str, list[float]] = {"postgresql": [], "sqlite": []}
        for i in range(ROUNDS):
            for side, server in (("sqlite", sqlite), ("postgresql", pg))[:: 1 if i % 2 == 0 else -1]:
                seen[side].append(run_wrk(server, "small", CONCURRENCY, body)["rps"])
        print("rounds (req/s):", seen)
        return {"rps_postgresql": max(seen["postgresql"]), "rps_sqlite": max(seen["sqlite"])}

    result = benchmark.pedantic(rounds, rounds=1, iterations=1)
    ratio = result["rps_postgresql"] / result["rps_sqlite"]
    benchmark.extra_info.update(result, ratio=ratio)
    report(
        f"| store | postgresql vs sqlite | {CONCURRENCY} | {result['rps_postgresql']:.0f} / "
        f"{result['rps_sqlite']:.0f} | {ratio:.3f} |"
    )
    print(
        f"postgresql {result['rps_postgresql']:.0f} req/s, sqlite {result['rps_sqlite']:.0f} req/s, ratio {ratio:.3f}"
    )
    # The PostgreSQL server really was the store: its traffic minutes (saved every few seconds) hold wrk's load.
    db = open_database(url)
    deadline = time.monotonic() + 30
    while db.query("SELECT COALESCE(SUM(requests), 0) FROM traffic")[0][0] == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert db.query("SELECT COALESCE(SUM(requests), 0) FROM traffic")[0][0] > 0
    db.close()
    if FULL:
        assert ratio >= 0.97, result
