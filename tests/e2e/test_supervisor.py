"""The worker supervisor of ``driftline serve --workers 2`` (http/supervisor.py): a worker that dies while the
parent waits for its health-check answer is replaced at once, not after ``timeout_worker_healthcheck`` (60 s)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def workers_of(pid: int) -> set[int]:
    """The parent's worker processes (uvicorn spawns them; the resource tracker is its child too, and is left out)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = set()
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in command:
            found.add(child)
    return found


def test_a_worker_that_dies_before_answering_a_ping_is_replaced_at_once(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    server = start_server(root, tmp_path, extra_args=["--workers", "2"])
    try:
        deadline = time.monotonic() + 60
        while len(workers := workers_of(server.proc.pid)) < 2:
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)
        victim = min(workers)
        # Stopped, it cannot answer: the parent's next ping (every half second) waits for it. Then it dies, as a
        # worker does that takes a ping in the last moments of its exit.
        os.kill(victim, signal.SIGSTOP)
        time.sleep(1.5)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        while not workers_of(server.proc.pid) - workers:
            assert time.monotonic() - killed < 20, f"not replaced:\n{server.log.read_text()[-3000:]}"
            time.sleep(0.1)
        assert f"Child process [{victim}] died" in server.log.read_text()
    finally:
        assert server.stop() == 0
