"""A scratch copy of the repository root for the README's commands, and `make serve` running in it.

The README's blocks run from the repository root (`.venv`, `demo-models/`, `driftline.db`, port 8000). Running
them in a scratch directory whose build inputs and `.venv` are symlinks to the real ones keeps the checkout clean:
make follows the symlinks for mtimes, so `make serve` there sees the same install stamps as at the root.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.readme.blocks import ROOT

README_PORT = 8000  # what the README prints
LINKED = [".venv", "Makefile", "pyproject.toml", "Cargo.toml", "Cargo.lock", "rust", "python", "examples"]


@pytest.fixture(scope="module", autouse=True)
def one_readme_module_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`make test` runs test files in two processes; README modules share port 8000, so each holds a lock beside
    the run's temporary directories while it runs (set up before the module's other fixtures: autouse)."""
    lock = tmp_path_factory.getbasetemp().parent / "driftline-readme.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def require_port_free(timeout: float = 30) -> None:
    """Fail clearly when something else listens on the README's port (waiting out our own server's exit)."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", README_PORT))
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"port {README_PORT} is taken: the README's commands serve on 127.0.0.1:{README_PORT}")
                time.sleep(0.5)
                continue
            return


def user_env(checkout: Path, *, venv_on_path: bool) -> dict[str, str]:
    """The environment of a user's shell: no DRIFTLINE_* left over from the tests, optionally the venv active."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    if venv_on_path:
        env["PATH"] = f"{checkout / '.venv' / 'bin'}:{env.get('PATH', '')}"
    return env


def link_checkout(root: Path) -> Path:
    """``root`` as the repository root: the build inputs and the venv linked, nothing else yet."""
    root.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        (root / name).symlink_to(ROOT / name)
    return root


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = ROOT / ".venv"
    if not (venv / "bin" / "python").exists():
        pytest.fail(f"{venv} does not exist: run `make install` (or `make install-dev`) in {ROOT} first")
    root = link_checkout(tmp_path_factory.mktemp("checkout"))
    # `make install` here would run `pip install -e .` on the real venv from a scratch directory and point the
    # editable install at it; so the stamp must already be current (it is within `make test`: install-dev ran).
    question = subprocess.run(["make", "-q", "install"], cwd=root, capture_output=True, text=True, timeout=60)
    if question.returncode != 0:
        pytest.fail(f"the install stamp in {venv} is missing or older than the build inputs: run `make install`")
    return root


class MakeServe:
    """`make serve`, started from a README line as a user types it and stopped as Ctrl-C stops it."""

    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = checkout / "make-serve.log"
        self.line = "make serve"
        self.starts = 0

    def start(self, line: str | None = None, timeout: float = 120) -> None:
        if self.proc is not None:
            return
        self.line = line or self.line
        require_port_free()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["bash", "-e", "-o", "pipefail", "-c", self.line],
                cwd=self.checkout,
                env=user_env(self.checkout, venv_on_path=False),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                pytest.fail(f"`{self.line}` exited with {code}:\n{self.log.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{README_PORT}/v2/health/ready", timeout=1).status_code == 200:
                    # The install stamps were current, so make served without reinstalling (minutes).
                    assert "pip install" not in self.log.read_text(), self.log.read_text()
                    return
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"`{self.line}` not ready after {timeout}s:\n{self.log.read_text()[-4000:]}")

    def ran_once(self) -> None:
        """As after a user's first `make serve`: the demo is built and the server is stopped."""
        if not self.starts:
            self.start()
        self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        # The terminal sends Ctrl-C's SIGINT to the whole foreground group: make and the server.
        for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 30)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        require_port_free()


@pytest.fixture(scope="module")
def make_serve(checkout: Path) -> Iterator[MakeServe]:
    serve = MakeServe(checkout)
    yield serve
    serve.stop()
