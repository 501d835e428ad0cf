"""The workers' metrics directory holds unix sockets, whose paths must fit in 108 bytes: a long $TMPDIR (macOS's
/var/folders/..., a deep test folder) is not used for it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from driftline.cli.serve import _metrics_dir


def test_a_long_tmpdir_falls_back_to_tmp(tmp_path: Path, monkeypatch) -> None:
    long = tmp_path / ("x" * 60) / ("y" * 40)
    long.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    made = Path(_metrics_dir())
    try:
        assert made.parent == Path("/tmp")
        assert len(str(made / "worker-9999.sock")) <= 100
        assert list(long.iterdir()) == []  # the first try is removed
    finally:
        shutil.rmtree(made)


def test_a_short_tmpdir_is_used(monkeypatch) -> None:
    short = Path(tempfile.mkdtemp(prefix="m-", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(short))
    try:
        assert Path(_metrics_dir()).parent == short
    finally:
        shutil.rmtree(short)
