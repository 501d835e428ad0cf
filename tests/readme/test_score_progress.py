"""`driftline score` without --quiet, as a user runs it: the progress bar at a terminal, and nothing but the
summary when the output goes to files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.helpers import build_test_repository
from tests.readme.terminal import ESC, run_in_terminal

from driftline.jobs import JobCancelled, JobSpec, run_local
from driftline.repository.demo import IRIS_FEATURES, iris_like_data

pytestmark = pytest.mark.slow

ROWS_PER_FILE = 3_000
FILES = 4


@pytest.fixture
def job(tmp_path: Path, iris_weights) -> Path:
    build_test_repository(tmp_path / "models", iris_weights)
    (tmp_path / "data").mkdir()
    for i in range(FILES):
        x, _ = iris_like_data(ROWS_PER_FILE, seed=10 + i)
        frame = pl.DataFrame({"id": np.arange(ROWS_PER_FILE) + i * ROWS_PER_FILE})
        frame = frame.with_columns(pl.Series(name, x[:, j]) for j, name in enumerate(IRIS_FEATURES))
        frame.write_parquet(tmp_path / "data" / f"{i}.parquet")
    return tmp_path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLINE_", "FORCE_COLOR", "NO_COLOR"))}


# Small chunks: several parts, so the bar is updated more than once.
ARGS = ["score", "iris", "data/", "--output", "scored", "--repository", "models", "--passthrough", "id"]
ARGS += ["--chunk-rows", "1000"]


def _summary(line: str) -> dict[str, object]:
    summary = json.loads(line)
    assert summary["rows"] == FILES * ROWS_PER_FILE, summary
    return summary


def test_at_a_terminal_the_bar_shows_rows_and_rate_on_stderr(job: Path):
    run = run_in_terminal([sys.executable, "-m", "driftline.cli", *ARGS], cwd=job, env=_env(), timeout=120)
    assert not run.timed_out
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    # stdout holds the summary alone: the bar never lands there.
    assert len(run.stdout_lines) == 1, run.stdout
    _summary(run.stdout_lines[-1])
    bar = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stderr)
    assert "scoring iris" in bar
    assert re.search(r"\d[\d,]*/12,000 rows", bar), bar
    assert re.search(r"\d[\d,]* rows/s", bar), bar
    assert ESC in run.stderr  # drawn and erased in place


def test_a_resumed_job_at_a_terminal_counts_on_from_what_was_done(job: Path, monkeypatch: pytest.MonkeyPatch):
    # A job interrupted after its first part (the HTTP API's cancel, in this process), then resumed by the CLI.
    # Two parts only: the reader has queued everything by then, so the cancelled job's threads all finish.
    inputs, rows = ["data/0.parquet", "data/1.parquet"], 2 * ROWS_PER_FILE
    monkeypatch.chdir(job)
    spec = JobSpec(model="iris", version="2", inputs=inputs, output="scored", repository="models",
                   chunk_rows=ROWS_PER_FILE, passthrough=["id"])  # fmt: skip
    cancel = threading.Event()
    with pytest.raises(JobCancelled):
        run_local(spec, progress=lambda done, total: cancel.set(), cancel=cancel)
    argv = ["score", "iris:2", *inputs, "--output", "scored", "--repository", "models", "--passthrough", "id"]
    argv += ["--chunk-rows", str(ROWS_PER_FILE), "--resume"]
    run = run_in_terminal([sys.executable, "-m", "driftline.cli", *argv], cwd=job, env=_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads(run.stdout_lines[-1])["rows"] == rows
    bar = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stderr)
    assert f"{rows:,}/{rows:,} rows" in bar, bar


def test_without_a_terminal_no_escape_codes_and_only_the_summary(job: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "driftline.cli", *ARGS],
        cwd=job,
        env={**_env(), "TERM": "xterm-256color"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert ESC not in proc.stderr
    assert ESC not in proc.stdout
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    _summary(lines[0])
