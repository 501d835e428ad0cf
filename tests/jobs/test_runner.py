"""The server's job runner and job roots: checks where files are opened, resume re-checks, no leaked events."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from driftline.errors import BadRequest
from driftline.jobs import JobSpec, run_local
from driftline.jobs.checkpoint import JobDir
from driftline.jobs.roots import Roots, opened, pinned_dir
from driftline.jobs.runner import JobRunner, confine
from driftline.jobs.store import JobStore
from driftline.store.db import open_database


def write_input(path: Path, rows: int = 300) -> None:
    x = np.random.default_rng(0).normal(5, 1.5, (rows, 4)).astype(np.float32)
    pl.DataFrame({"id": np.arange(rows), **{f"f{i}": x[:, i] for i in range(4)}}).write_parquet(path)


def job(repo: Path, inputs: list[Path], out: Path) -> JobSpec:
    return JobSpec(
        model="iris", inputs=[str(p) for p in inputs], output=str(out), repository=str(repo), passthrough=["id"]
    )


@pytest.fixture
def area(tmp_path: Path) -> tuple[Path, Path]:
    """A job root and a directory outside it (with a secret input file)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    write_input(outside / "secret.parquet")
    return root, outside


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_symlinks_out_of_the_roots_are_refused_where_files_are_opened(repo, area):
    root, outside = area
    roots = Roots([root])
    write_input(root / "in.parquet")
    (root / "in-link.parquet").symlink_to(root / "in.parquet")  # inside: followed
    (root / "secret-link.parquet").symlink_to(outside / "secret.parquet")
    (root / "out-link").symlink_to(outside, target_is_directory=True)

    with opened(root / "in-link.parquet", roots) as source:
        assert pl.read_parquet(source).height == 300
    with pytest.raises(BadRequest, match="outside the allowed job roots"), opened(root / "secret-link.parquet", roots):
        pass
    with pytest.raises(BadRequest, match="outside the allowed job roots"):
        pinned_dir(root / "out-link", roots)
    os.mkfifo(root / "fifo.parquet")  # swapped in for a file: refused at once, never a hang in open()
    with pytest.raises(BadRequest, match="not a regular file"), opened(root / "fifo.parquet", roots):
        pass

    # run_local itself checks (no confine() before it): both directions.
    with pytest.raises(BadRequest, match="outside the allowed job roots"):
        run_local(job(repo, [root / "secret-link.parquet"], root / "out"), roots=roots)
    with pytest.raises(BadRequest, match="outside the allowed job roots"):
        run_local(job(repo, [root / "in.parquet"], root / "out-link" / "sub"), roots=roots)
    with pytest.raises(BadRequest, match="outside the allowed job roots"):
        run_local(job(repo, [root / "in.parquet"], root / "out-link"), roots=roots)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.parquet"]
    summary = run_local(job(repo, [root / "in-link.parquet"], root / "out"), roots=roots)
    assert summary.rows == 300


def test_a_symlink_planted_at_a_part_name_is_never_written_through(repo, area):
    root, outside = area
    write_input(root / "in.parquet")
    out = root / "out"
    out.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"keep")
    with JobDir(out) as jobdir:
        spec = job(repo, [root / "in.parquet"], out)
        jobdir.start(spec, [], resume=False)
        (out / "part-00000-000000.parquet.tmp").symlink_to(victim)
        with pytest.raises(OSError):  # O_NOFOLLOW: ELOOP, not a write into the victim
            jobdir.write_part(0, 0, pl.DataFrame({"a": [1]}), 0, None)
    assert victim.read_bytes() == b"keep"


def test_confine_names_a_nul_byte_field(area):
    root, _ = area
    roots = Roots([root])
    with pytest.raises(BadRequest, match=r"inputs\[1\]: a path must not contain a NUL byte"):
        confine(JobSpec(model="iris", inputs=["a.parquet", "b\x00.parquet"], output="out"), roots)
    with pytest.raises(BadRequest, match="output: a path must not contain a NUL byte"):
        confine(JobSpec(model="iris", inputs=["a.parquet"], output="o\x00ut"), roots)


def test_runner_rechecks_on_resume_and_forgets_cancel_events(repo, area, tmp_path):
    root, outside = area
    write_input(root / "in.parquet")
    (root / "link.parquet").symlink_to(root / "in.parquet")
    db = open_database(tmp_path / "jobs.db")
    store = JobStore(db)
    roots = Roots([root])
    # A job recorded as running when the server stopped, whose input link now leads out of the roots.
    resumed = store.create(job(repo, [root / "link.parquet"], root / "resumed"))
    store.update(resumed, state="running")
    (root / "link.parquet").unlink()
    (root / "link.parquet").symlink_to(outside / "secret.parquet")

    runner = JobRunner(store, roots)
    runner.start()
    try:
        record = store.get(resumed)
        assert record is not None
        assert record.state == "failed"
        assert "outside the allowed job roots" in (record.error or "")
        ids = [runner.submit(job(repo, [root / "in.parquet"], root / f"out{i}")) for i in range(3)]
        assert runner.cancel(ids[2]) or store.get(ids[2]).state in ("succeeded", "cancelled")

        def ended() -> bool:
            states = [r.state for r in (store.get(i) for i in ids) if r is not None]
            return all(s in ("succeeded", "failed", "cancelled") for s in states)

        wait_until(ended)
        wait_until(lambda: runner.pending_events() == 0, timeout=10)
        assert [store.get(i).state for i in ids[:2]] == ["succeeded", "succeeded"]
    finally:
        runner.stop()
    assert not (root / "resumed").exists() or not any((root / "resumed").glob("part-*"))
    assert [p.name for p in outside.iterdir()] == ["secret.parquet"]
