"""A full queue drops and counts without waiting; a write error stops capture, keeps the reason, never raises."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from tests.capture.conftest import batch

from driftline.backends.onnx import OnnxBackend
from driftline.capture import CaptureBatch, CaptureReader, CaptureWriter
from driftline.repository.model_config import load_model_config
from driftline.store.captures import CaptureIndex
from driftline.store.db import Database


def test_a_full_queue_drops_and_counts_without_blocking(root: Path, db: Database, index: CaptureIndex):
    writer = CaptureWriter(root, index, queue_rows=100, segment_rows=10, segment_seconds=3600)
    slowest = 0.0
    # The store held by another writer: the capture thread waits on its first index insert, so nothing submitted
    # is written meanwhile and the bound is met by submits alone.
    with db.transaction():
        for i in range(20):
            started = time.monotonic()
            writer.submit(batch(f"r{i}", rows=10))
            slowest = max(slowest, time.monotonic() - started)
        figures = writer.figures()
    assert slowest < 1.0  # a submit never waits on the writer (here it is stuck for the whole loop)
    assert (figures.queue_rows, figures.dropped) == (100, 100)
    assert writer.flush(30)
    assert writer.close(30)
    figures = writer.figures()
    assert (figures.captured, figures.dropped, figures.queue_rows) == (100, 100, 0)
    assert sorted(set(CaptureReader(root, index).frame("iris")["request_id"].to_list())) == sorted(
        f"r{i}" for i in range(10)
    )


@contextlib.contextmanager
def _read_only(folder: Path):
    """A folder nobody may write, root included (chmod does not stop root; the immutable flag does)."""
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    immutable = False
    try:
        probe = folder / "probe"
        try:
            probe.touch()
        except PermissionError:
            pass
        else:
            probe.unlink()
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode == 0
            if not immutable:
                pytest.skip("cannot make a folder read-only here (root without chattr)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def _stops_and_keeps_serving(root: Path, index: CaptureIndex, model: Path) -> None:
    backend = OnnxBackend(model, load_model_config(model.parent.parent / "config.toml"))
    writer = CaptureWriter(root, index, queue_rows=100, segment_rows=5, segment_seconds=3600)
    assert writer.submit(batch("first", rows=5))
    assert not writer.flush(30)  # the write failed: the flush never completes
    reason = writer.failed
    assert reason is not None
    assert str(root) in reason
    assert "capture stopped" in reason
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    for i in range(50):  # inference goes on; each capture after it is dropped and counted, without raising
        outputs = backend.infer({"x": x})
        assert outputs["label"].shape == (2,)
        captured = CaptureBatch("iris", 1, "ab" * 32, f"later{i}", "alias", 0, 9, 2, {"x": x}, outputs)
        assert writer.submit(captured) is False
    assert writer.close(30)
    figures = writer.figures()
    assert (figures.captured, figures.dropped, figures.queue_rows, figures.failed) == (0, 5 + 100, 0, reason)
    assert index.segments("iris") == []
    leftovers = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    assert leftovers == []  # no temp file left behind


def test_a_read_only_root_stops_capture_keeps_the_reason_and_serving_goes_on(
    tmp_path: Path, index: CaptureIndex, repo: Path
):
    with _read_only(tmp_path / "captures") as root:
        _stops_and_keeps_serving(root, index, repo / "iris" / "1" / "model.onnx")


def test_a_root_that_cannot_be_created_stops_capture(tmp_path: Path, index: CaptureIndex, repo: Path):
    (tmp_path / "file").write_text("in the way")
    _stops_and_keeps_serving(tmp_path / "file" / "captures", index, repo / "iris" / "1" / "model.onnx")


def test_a_full_disk_stops_capture(tmp_path: Path, index: CaptureIndex):
    disk = tmp_path / "small"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        writer = CaptureWriter(disk, index, queue_rows=100_000, segment_rows=20_000, segment_seconds=3600)
        assert writer.submit(batch("big", rows=20_000))
        assert not writer.flush(60)
        assert writer.failed is not None
        assert "No space left" in writer.failed
        assert writer.submit(batch("later")) is False
        assert writer.close(30)
        assert [p.name for p in disk.rglob("*") if p.is_file()] == []  # the partial temp file was removed
    finally:
        subprocess.run(["umount", str(disk)], check=True)
