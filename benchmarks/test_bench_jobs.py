"""Bulk scoring throughput and memory: the local job engine against in-process onnxruntime and a pandas loop.

Each variant runs in its own process (so its peak RSS is its own) over the same Parquet file through the large MLP
(256 inputs, 1024 x 3 hidden, 16 outputs) at batch size 1024. BENCH_FULL=1 uses 200,000 rows (205 MB of features),
else 20,000. BENCH_REPORT=FILE collects a markdown row per variant.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from benchmarks.conftest import FULL

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

ROWS = 200_000 if FULL else 20_000
SCRIPT = Path(__file__).with_name("scoring_runs.py")


@pytest.fixture(scope="module")
def scoring_input(tmp_path_factory: pytest.TempPathFactory, mlp_models: dict[str, Path]) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("scoring")
    model = root / "models" / "large"
    (model / "1").mkdir(parents=True)
    shutil.copy(mlp_models["large"], model / "1" / "model.onnx")
    rng = np.random.default_rng(0)
    frames = []
    for start in range(0, ROWS, 50_000):
        n = min(50_000, ROWS - start)
        x = rng.normal(size=(n, 256)).astype(np.float32)
        frames.append(pl.DataFrame({"id": np.arange(start, start + n), **{f"f{i}": x[:, i] for i in range(256)}}))
    source = root / "input.parquet"
    pl.concat(frames).write_parquet(source)
    return model, source


def run(kind: str, model: Path, source: Path, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), kind, str(model), str(source), str(out)],
        capture_output=True, text=True, timeout=3600, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["job", "ort", "pandas"])
@pytest.mark.benchmark(group="bulk-scoring")
def test_bulk_scoring(benchmark, scoring_input, tmp_path, kind):
    if kind == "pandas" and importlib.util.find_spec("pandas") is None:
        pytest.skip("pandas is not installed (the plain baseline needs it)")
    model, source = scoring_input
    result = benchmark.pedantic(run, args=(kind, model, source, tmp_path / "out"), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["rows"] == ROWS
    target = os.environ.get("BENCH_REPORT")
    if target:
        with Path(target).open("a") as fh:
            fh.write(
                f"| {kind} | {ROWS} | {result['rows_per_s']:.0f} | {result['seconds']:.1f} | {result['rss_mb']:.0f} |\n"
            )
