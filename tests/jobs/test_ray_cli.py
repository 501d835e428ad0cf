"""`driftline score --engine ray` in its own process, with its own local Ray.

A module of its own so that the Ray instance of test_ray.py is shut down first: two local Ray instances on a
2-core machine contend for CPU and memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.jobs.test_ray import make_input

pytest.importorskip("ray")

pytestmark = pytest.mark.slow


def test_cli_engine_ray(repo: Path, tmp_path: Path):
    source = make_input(tmp_path, "parquet", 500)
    out = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "score", "iris", str(source), "--repository", str(repo),
         "--output", str(tmp_path / "out"), "--passthrough", "id", "--engine", "ray", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    # stdout is the summary alone: Ray's own notices go to stderr
    assert json.loads(out.stdout)["rows"] == 500
    assert (tmp_path / "out" / "_manifest.json").exists()
    assert not (tmp_path / "out.ray-staging").exists()
