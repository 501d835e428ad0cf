"""`make install` and `make install-dev` run pip only when a build input changed, so a second `make serve` starts
in seconds instead of rebuilding the Rust extension.

The Makefile and make are the real ones; the venv's python is a stand-in that logs what pip was asked, because a
real `pip install -e .` rebuilds the extension (minutes) and would repoint the test venv's editable install. The
checkout is the symlinked layout the README test runs `make serve` in, so make reads mtimes through the links.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.readme.blocks import ROOT

INPUTS = {
    "pyproject.toml": "[project]\nname = 'x'\n",
    "Cargo.toml": "[package]\nname = 'x'\n",
    "Cargo.lock": "version = 3\n",
    "rust/lib.rs": "",
    "rust/batching/queue.rs": "",
}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    real = tmp_path / "real"
    for name, text in INPUTS.items():
        (real / name).parent.mkdir(parents=True, exist_ok=True)
        (real / name).write_text(text)
    shutil.copy2(ROOT / "Makefile", real / "Makefile")
    python = real / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../pip.log"\n')
    python.chmod(0o755)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in [".venv", "Makefile", "pyproject.toml", "Cargo.toml", "Cargo.lock", "rust"]:
        (checkout / name).symlink_to(real / name)
    return checkout


def make(checkout: Path, target: str) -> list[str]:
    """Run a target; return every pip command run so far."""
    proc = subprocess.run(["make", target], cwd=checkout, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = checkout / ".venv" / "pip.log"
    return log.read_text().splitlines() if log.exists() else []


def touch_later(path: Path) -> None:
    """Make a build input newer than every stamp (a second later: some filesystems keep whole seconds)."""
    later = time.time() + 2
    os.utime(path, (later, later))


def test_second_install_runs_nothing(checkout: Path):
    assert make(checkout, "install") == ["-m pip install -q -e ."]
    assert make(checkout, "install") == ["-m pip install -q -e ."]
    assert subprocess.run(["make", "-q", "install"], cwd=checkout, timeout=60).returncode == 0


@pytest.mark.parametrize("changed", list(INPUTS))
def test_a_changed_build_input_installs_again(checkout: Path, changed: str):
    make(checkout, "install")
    touch_later(checkout.parent / "real" / changed)  # the file itself, not the link: make follows links
    assert make(checkout, "install") == ["-m pip install -q -e ."] * 2


def test_a_new_rust_source_installs_again(checkout: Path):
    make(checkout, "install")
    new = checkout.parent / "real" / "rust" / "drift" / "new.rs"
    new.parent.mkdir()
    new.write_text("")
    touch_later(new)
    assert len(make(checkout, "install")) == 2


def test_install_dev_also_satisfies_install(checkout: Path):
    dev = "-m pip install -q -e .[dev,torch,ray,evidently,mlflow]"
    assert make(checkout, "install-dev") == [dev]
    assert make(checkout, "install") == [dev]
    assert make(checkout, "install-dev") == [dev]


def test_install_does_not_satisfy_install_dev(checkout: Path):
    make(checkout, "install")
    assert make(checkout, "install-dev")[-1].endswith("[dev,torch,ray,evidently,mlflow]")


def test_a_failed_install_leaves_no_stamp(checkout: Path):
    python = checkout / ".venv" / "bin" / "python"
    python.write_text("#!/bin/sh\nexit 1\n")
    assert subprocess.run(["make", "install"], cwd=checkout, capture_output=True, timeout=60).returncode != 0
    assert subprocess.run(["make", "-q", "install"], cwd=checkout, timeout=60).returncode != 0
