"""Running a command as it runs at a user's terminal: stdout and stderr are each a pseudo-terminal.

Two terminals rather than one keep the streams apart, so a test can tell the progress bar (stderr) from the
summary line (stdout) while both programs still see a tty, as they do for a user.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import selectors
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import exited_unreaped
from tests.readme.blocks import Block
from tests.readme.conftest import user_env

ESC = "\x1b"


@dataclass(frozen=True)
class TerminalRun:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def stdout_lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.strip()]


def _terminal(columns: int, rows: int) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def run_in_terminal(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float, columns: int = 120, rows: int = 40
) -> TerminalRun:
    """Run ``argv`` with stdin/stdout on one terminal and stderr on another; read both until it ends.

    The command gets its own session, so whatever it leaves running is stopped with it.
    """
    out_master, out_slave = _terminal(columns, rows)
    err_master, err_slave = _terminal(columns, rows)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**env, "TERM": "xterm-256color"},
        stdin=out_slave,
        stdout=out_slave,
        stderr=err_slave,
        start_new_session=True,
    )
    os.close(out_slave)
    os.close(err_slave)
    chunks: dict[int, list[bytes]] = {out_master: [], err_master: []}
    selector = selectors.DefaultSelector()
    for fd in chunks:
        selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    exited_at: float | None = None
    timed_out = False
    try:
        # Ends when both terminals are closed, or shortly after the command exits if a process it started
        # still holds one open; bounded by the timeout either way.
        while selector.get_map():
            now = time.monotonic()
            if now > deadline:
                timed_out = True
                break
            if exited_at is None and exited_unreaped(proc):  # not reaped: the group id stays ours
                exited_at = now
            if exited_at is not None and now - exited_at > 2:
                break
            for key, _ in selector.select(timeout=0.2):
                try:
                    data = os.read(key.fd, 65536)
                except OSError:  # EIO: the last writer closed the terminal
                    data = b""
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM if not timed_out else signal.SIGKILL)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        selector.close()
        os.close(out_master)
        os.close(err_master)

    def text(fd: int) -> str:
        return b"".join(chunks[fd]).decode(errors="replace").replace("\r\n", "\n")

    return TerminalRun(proc.returncode, text(out_master), text(err_master), timed_out)


def run_block_in_terminal(block: Block, cwd: Path, timeout: float) -> TerminalRun:
    """A README bash block run as printed at a terminal, the venv on PATH as a user's shell has it; it must finish
    in time, exit 0 and print no traceback."""
    run = run_in_terminal(
        ["bash", "-e", "-o", "pipefail", "-c", block.text],
        cwd=cwd,
        env=user_env(cwd, venv_on_path=True),
        timeout=timeout,
    )
    assert not run.timed_out, run.stderr[-3000:]
    assert run.returncode == 0, f"{block.label} failed ({run.returncode}):\n{run.stdout}\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    return run
