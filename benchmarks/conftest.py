"""Benchmark fixtures: the small and large MLPs of the issue, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from driftline.repository.demo import build_mlp_onnx

# BENCH_FULL=1 runs the full sizes and durations recorded in RESULTS.md; the default is a quick pass
# that proves each benchmark runs (CI runs them this way, with --benchmark-disable).
FULL = os.environ.get("BENCH_FULL") == "1"

MLPS = {"small": (32, 64, 2, 4), "large": (256, 1024, 3, 16)}


@pytest.fixture(scope="session")
def mlp_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench-models")
    paths = {}
    for name, (inputs, hidden, layers, outputs) in MLPS.items():
        paths[name] = root / f"{name}.onnx"
        build_mlp_onnx(paths[name], inputs, hidden, layers, outputs, seed=11)
    return paths


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the benchmarks that compare stores (tests/postgres.py)."""
    from tests.postgres import start_postgres

    server = start_postgres()
    yield server
    server.stop()
