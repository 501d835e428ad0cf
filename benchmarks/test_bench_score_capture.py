"""Bulk scoring with capture: `driftline score --capture` against the same command without it, interleaved.

Each run is the command a user types (`python -m driftline.cli score small:1 input.parquet --output ... --quiet
[--capture]`), in its own process, over the same Parquet file of the small MLP (32 inputs, 64 x 2 hidden,
4 outputs) at the default chunk (65,536 rows) and batch size (1024). The variants alternate round by round, so a
shared machine's load falls on both alike. Throughput is the job's own rows/s (its summary: inputs checked, rows
scored, output written and, with --capture, every captured row written and indexed); the wall time of the whole
command is kept beside it. Peak RSS is the child's own (``os.wait4``), for capture at two queue sizes, to show
the bound follows the queue and not the rows captured.

The issue's target, at least 0.9x the rows/s without capture, is reported (and recorded in RESULTS.md by
BENCH_REPORT), never asserted: timings do not belong in pass/fail tests. BENCH_FULL=1 runs 1,000,000 rows and
3 rounds (the figures in RESULTS.md), else 100,000 rows and 1 round. BENCH_REPORT=FILE collects a markdown row
per variant.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from benchmarks.conftest import FULL

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

ROWS = 1_000_000 if FULL else 100_000
ROUNDS = 3 if FULL else 1
# (label, --capture, [capture] queue_rows)
VARIANTS = [("off", False, 100_000), ("capture", True, 100_000), ("capture-q400k", True, 400_000)]
CAPTURED_ROW_BYTES = 32 * 4 + 4 * 4  # the float32 inputs and outputs a captured row holds, before Arrow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mlp_models: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("score-capture")
    (root / "models" / "small" / "1").mkdir(parents=True)
    shutil.copy(mlp_models["small"], root / "models" / "small" / "1" / "model.onnx")
    x = np.random.default_rng(0).normal(size=(ROWS, 32)).astype(np.float32)
    pl.DataFrame({"id": np.arange(ROWS), **{f"f{i}": x[:, i] for i in range(32)}}).write_parquet(root / "input.parquet")
    return root


def score(site: Path, label: str, capture: bool, queue_rows: int, run: int) -> dict[str, float]:
    """One `driftline score` run in a fresh output, capture directory and store; its summary, wall time and RSS."""
    work = site / f"run-{run}-{label}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    config = work / "server.toml"
    config.write_text(f'[capture]\ndirectory = "{work / "captures"}"\nqueue_rows = {queue_rows}\n')
    env = {**os.environ, "DRIFTLINE_CONFIG": str(config), "DRIFTLINE_DATABASE": str(work / "driftline.db")}
    command = [sys.executable, "-m", "driftline.cli", "score", "small:1", str(site / "input.parquet")]
    command += ["--output", str(work / "out"), "--repository", str(site / "models"), "--passthrough", "id", "--quiet"]
    command += ["--capture"] if capture else []
    with (work / "stdout").open("wb") as out, (work / "stderr").open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=work)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (getrusage would mix every child)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, (work / "stderr").read_text()
    summary = json.loads((work / "stdout").read_text())
    shutil.rmtree(work / "out")
    shutil.rmtree(work / "captures", ignore_errors=True)
    figures = summary.get("capture") or {}
    return {
        "rows": summary["rows"],
        "rows_per_s": summary["rows_per_s"],
        "job_s": summary["seconds"],
        "wall_s": wall,
        "rss_mb": usage.ru_maxrss / 1024,
        "captured": figures.get("captured", 0),
        "dropped": figures.get("dropped", 0),
        "segments": figures.get("segments", 0),
    }


def interleaved(site: Path) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in VARIANTS}
    for run in range(ROUNDS):
        for label, capture, queue_rows in VARIANTS:
            runs[label].append(score(site, label, capture, queue_rows, run))
    return runs


@pytest.mark.benchmark(group="score-capture")
def test_score_capture_against_off(benchmark, site):
    runs = benchmark.pedantic(interleaved, args=(site,), rounds=1, iterations=1)
    median = {label: statistics.median(r["rows_per_s"] for r in rs) for label, rs in runs.items()}
    rss = {label: max(r["rss_mb"] for r in rs) for label, rs in runs.items()}
    ratio = median["capture"] / median["off"]
    benchmark.extra_info.update({"runs": runs, "median_rows_per_s": median, "peak_rss_mb": rss, "ratio": ratio})
    for label, capture, _ in VARIANTS:
        for r in runs[label]:
            assert r["rows"] == ROWS
            assert (r["captured"], r["dropped"]) == ((ROWS, 0) if capture else (0, 0))
    target = os.environ.get("BENCH_REPORT")
    if target:
        with Path(target).open("a") as fh:
            for label, _, queue_rows in VARIANTS:
                rs = runs[label]
                each = " / ".join(f"{r['rows_per_s']:,.0f}" for r in rs)
                wall = statistics.median(r["wall_s"] for r in rs)
                queue = queue_rows if label != "off" else "-"
                row = [label, queue, f"{ROWS:,}", each, f"{median[label]:,.0f}", f"{wall:.1f}", f"{rss[label]:.0f}"]
                fh.write(f"| {' | '.join(map(str, row))} |\n")
            queue_mb = 100_000 * CAPTURED_ROW_BYTES / 2**20
            fh.write(
                f"\nratio capture/off (medians): {ratio:.3f}; queue bound 100k rows = {queue_mb:.1f} MB of tensors\n"
            )
