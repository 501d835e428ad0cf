"""The Bulk scoring block: its input files made here, then the block run as printed at a terminal."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import polars as pl
from tests.readme.blocks import Block, commands, sample_output
from tests.readme.terminal import run_block_in_terminal

from driftline.repository.demo import IRIS_FEATURES, iris_like_data

# The files the block names: data/*.parquet and more.csv, with an `id` and the iris feature columns.
INPUTS = {"data/2026-11-30.parquet": 40_000, "data/2026-12-01.parquet": 40_000, "more.csv": 5_000}


def write_iris_frame(path: Path, rows: int, seed: int, ids: bool = False) -> None:
    x, _ = iris_like_data(rows, seed=seed)
    frame = pl.DataFrame({name: x[:, i] for i, name in enumerate(IRIS_FEATURES)})
    if ids:
        frame = frame.with_columns(pl.Series("id", np.arange(rows) + seed * 1_000_000)).select("id", *IRIS_FEATURES)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)


def _rows(cwd: Path, inputs: list[str]) -> int:
    """Rows in the inputs a command names (files, directories, globs), from the files written here."""
    files: set[Path] = set()
    for arg in inputs:
        path = cwd / arg
        files |= set(path.iterdir()) if path.is_dir() else set(cwd.glob(arg))
    return sum(INPUTS[str(f.relative_to(cwd))] for f in files)


def run_bulk_block(block: Block, cwd: Path) -> None:
    for seed, (name, rows) in enumerate(INPUTS.items(), start=1):
        write_iris_frame(cwd / name, rows, seed, ids=True)
    scores = [shlex.split(line, comments=True) for line in commands(block)]
    assert scores, block.label
    assert all(s[:2] == ["driftline", "score"] for s in scores), commands(block)
    run = run_block_in_terminal(block, cwd, timeout=280)
    # stdout at the terminal: one JSON summary per command, nothing else; the last line is the last summary.
    lines = run.stdout_lines
    assert len(lines) == len(scores), run.stdout
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stderr)
    # The keys the README's sample summary shows; every engine's summary has the same keys, filled alike.
    documented = set(re.findall(r'"(\w+)":', sample_output(block, "driftline score")))
    first = json.loads(lines[0])
    assert documented <= set(first), (documented, first)
    for argv, line in zip(scores, lines, strict=True):
        summary = json.loads(line)
        assert set(summary) == set(first), (argv, summary)
        if "--resume" not in argv:  # a resumed job's drift covers only the rows that run scored (here none)
            nulls = [k for k in summary if summary[k] is None]
            assert nulls == [k for k in first if first[k] is None], f"{shlex.join(argv)}: null {nulls}: {summary}"
        # "part-FFFFF-CCCCC.parquet per input file and chunk", each in the output directory.
        output = cwd / summary["output"]
        for part in summary["parts"]:
            assert re.fullmatch(r"part-\d{5}-\d{5,}\.parquet", part), f"{shlex.join(argv)}: part {part}"
            assert (output / part).is_file(), (argv, part)
        model = argv[2]
        inputs = [a for a in argv[3 : argv.index("--output")] if not a.startswith("-")]
        assert summary["model"] == model.split(":")[0], summary
        if ":" in model:
            assert summary["version"] == int(model.split(":")[1]), summary
        assert summary["rows"] + summary["rejected"] == _rows(cwd, inputs), (argv, summary)
        assert (cwd / summary["output"]).resolve() == (cwd / argv[argv.index("--output") + 1]).resolve(), summary
        if "--engine" not in argv and "--quiet" not in argv:
            # The bar was drawn on the other terminal; a job that scores rows shows them against its total.
            assert f"scoring {model} " in drawn, drawn[-2000:]
            if "--resume" not in argv:
                assert f"/{_rows(cwd, inputs):,} rows" in drawn, drawn[-2000:]
        assert "\x1b" not in line
