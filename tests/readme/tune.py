"""The README's tuning block, run as printed at a terminal: the bar on stderr, one JSON summary on stdout, the
report on disk, and the sample summary the README shows (its `# ` lines) a true subset of what the command prints."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from tests.readme.blocks import Block, commands
from tests.readme.terminal import run_block_in_terminal


def _sample(block: Block) -> dict[str, object]:
    lines = [line[1:].strip() for line in block.text.splitlines() if line.startswith("#")]
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    sample, _ = json.JSONDecoder().raw_decode("\n".join(lines[start:]))  # a remark may follow the object
    return sample


def _same_shape(sample: object, real: object, where: str) -> None:
    """Every key the sample shows is in the real summary, with a value of the same kind (numbers vary per run)."""
    if isinstance(sample, dict):
        assert isinstance(real, dict), where
        for key, value in sample.items():
            assert key in real, f"{where}.{key} is in the README's sample, not in the summary"
            _same_shape(value, real[key], f"{where}.{key}")
    elif isinstance(sample, (int, float)) and not isinstance(sample, bool):
        assert isinstance(real, (int, float)), (where, real)
    else:
        assert type(sample) is type(real), (where, sample, real)


def run_tune_block(block: Block, cwd: Path) -> None:
    tunes = [shlex.split(line, comments=True) for line in commands(block)]
    assert [t[:2] for t in tunes] == [["driftline", "tune"]], commands(block)
    run = run_block_in_terminal(block, cwd, timeout=240)
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stderr)
    assert "tuning iris" in drawn, drawn[-2000:]  # the bar, at a terminal
    lines = run.stdout_lines
    assert len(lines) == 1, run.stdout
    summary = json.loads(lines[0])
    _same_shape(_sample(block), summary, "summary")
    assert summary["points_measured"] == summary["points_in_space"] == 2, summary
    assert summary["recommended"] is not None, summary
    assert summary["recommended"]["point"]["p99_ms"] <= 20, summary
    for name in ("report.html", "tune.json", "config.patch.toml"):
        assert (cwd / "tune-iris" / name).is_file(), name
