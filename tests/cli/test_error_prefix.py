"""Every command group refuses bad input the same way: one ``driftline: error:`` line on stderr, exit 2.

Both kinds of refusal are covered for each group: a usage error argparse finds, and a DriftlineError the command
raises, so a second prefix (``driftline drift: error:`` once) or a two-line usage message cannot come back.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from tests.helpers import assert_one_line_refusal

if TYPE_CHECKING:
    from pathlib import Path

# (command line, words the one line must hold); run in an empty directory, so nothing here finds a store or models.
USAGE_ERRORS = {
    "top": (["nope"], ["invalid choice: 'nope'", "driftline --help"]),
    "serve": (["serve", "--port", "x"], ["serve: argument --port: invalid int value: 'x'", "driftline serve --help"]),
    "score": (["score", "iris", "in.csv"], ["score: the following arguments are required: --output"]),
    "drift": (["drift", "a.csv", "b.csv", "--format", "pdf"], ["drift: argument --format: invalid choice: 'pdf'"]),
    "models": (["models", "alias", "iris", "champion", "two"], ["models alias: argument version: invalid int"]),
    "keys": (["keys", "create", "ci"], ["keys create: the following arguments are required: --role"]),
}
DRIFTLINE_ERRORS = {
    "serve": (["serve", "--port", "0"], ["--port 0: must be in 1..65535"]),
    "score": (["score", "iris", "in.csv", "--output", "out", "--columns", "x"], ["--columns 'x' must look like"]),
    "drift": (["drift", "missing.csv", "other.csv"], ["no such file: missing.csv"]),
    "models": (["models", "status", "--url", "not-a-url"], ["--url 'not-a-url'"]),
    "keys": (["keys", "create", "ci", "--role", "boss", "--database", "k.db"], ["boss"]),
}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", *argv], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize("group", list(USAGE_ERRORS))
def test_a_usage_error_is_one_line_with_the_one_prefix(group: str, tmp_path: Path):
    argv, words = USAGE_ERRORS[group]
    assert_one_line_refusal(_run(argv, tmp_path), *words)


@pytest.mark.parametrize("group", list(DRIFTLINE_ERRORS))
def test_a_driftline_error_is_one_line_with_the_one_prefix(group: str, tmp_path: Path):
    argv, words = DRIFTLINE_ERRORS[group]
    assert_one_line_refusal(_run(argv, tmp_path), *words)
