"""A real driftline server on 127.0.0.1, started as a subprocess the way a user starts it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.helpers import build_test_repository
from tests.webhooks import Receiver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(
    repository: Path,
    workdir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 90,
    extra_args: list[str] | None = None,
    port: int | None = None,
) -> Server:
    """``driftline serve repository`` in ``workdir`` on ``port`` (a free one by default), once it is ready.

    The log is ``workdir/server-<port>.log``, appended to: a server started again on its port keeps one log."""
    port = free_port() if port is None else port
    log = workdir / f"server-{port}.log"
    full_env = {**os.environ, "DRIFTLINE_DATABASE": str(workdir / "driftline.db"), **(env or {})}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", "serve", str(repository), "--port", str(port), *(extra_args or [])],
            cwd=workdir,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return wait_until_answering(Server(proc, port, repository, log), timeout=timeout)


def wait_until_answering(server: Server, path: str = "/v2/health/ready", timeout: float = 90) -> Server:
    """Wait until ``GET path`` answers 200; a server that exits or never answers fails with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}{path}", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not answering {path} after {timeout}s:\n{server.log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, iris_weights):
    """One server per test module over a repository with iris (ONNX, v1+v2), mlp, iris_torch and heavy."""
    workdir = tmp_path_factory.mktemp("server")
    has_torch = True
    try:
        import torch  # noqa: F401
    except ImportError:
        has_torch = False
    root = build_test_repository(workdir / "models", iris_weights, torch=has_torch, slow=True)
    srv = start_server(root, workdir, {"DRIFTLINE_HTTP__MAX_REQUEST_BYTES": str(1 << 20)})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver (tests/webhooks.py) for the module's server."""
    r = Receiver()
    yield r
    r.close()
