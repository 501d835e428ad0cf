"""A real HAProxy (Debian's `haproxy` package) on 127.0.0.1 in front of driftline replicas, for tests.

Round robin over the given backends, each health-checked on ``/v2/health/ready`` every 200 ms (down after one
failed check, up after two good ones), with retries that move a request whose connection failed or was closed
unanswered to another replica. The stats socket gives each backend's state as HAProxy sees it.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.conftest import free_port
from tests.helpers import exited_unreaped

BACKEND = "replicas"
CHECK_INTERVAL_MS = 200
RISE, FALL = 2, 1

CONFIG = """\
global
    stats socket {socket} mode 600 level admin
    maxconn 4096
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout check 1s
    retries 3
    # 1: move to another server on every retry, not only the last (the default): a replica that is gone stays gone
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout

frontend front
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk GET /v2/health/ready
    http-check expect status 200
    default-server inter {inter}ms fastinter {inter}ms downinter {inter}ms fall {fall} rise {rise}
{servers}
"""


def require_haproxy() -> str:
    """The haproxy binary; skip the test when it is missing (fail under CI=true, where that is a broken setup)."""
    path = shutil.which("haproxy")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is not installed: make tools installs it")
        pytest.skip("make tools installs haproxy")
    return path


@dataclass
class HAProxy:
    """A running HAProxy; ``url`` is its front end, ``states()`` each backend server's status."""

    proc: subprocess.Popen[bytes]
    port: int
    socket_path: Path
    log: Path
    servers: dict[str, int]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self, line: str) -> str:
        """One command on the stats socket (``show stat``, ``disable server replicas/r0``, ...) and its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend: server name (and ``BACKEND``, the sum) -> its CSV row (``status``,
        ``wretr`` retries, ``wredis`` redispatches, ``hrsp_5xx``, ``req_tot``, ...)."""
        text = self.command("show stat").removeprefix("# ")
        rows = csv.DictReader(line for line in text.splitlines() if line)
        return {row["svname"]: row for row in rows if row["pxname"] == BACKEND}

    def states(self) -> dict[str, str]:
        """Server name -> HAProxy's status of it: ``UP``, ``DOWN``, ``UP 1/2`` (rising), ``DOWN 1/2``, ``MAINT``;
        ``UP (unchecked)`` before its first check, since HAProxy starts every server up."""
        return {
            name: row["status"]
            + (" (unchecked)" if row["status"] == "UP" and row["check_status"] in ("", "INI") else "")
            for name, row in self.stats().items()
            if name != "BACKEND"
        }

    def wait_for(self, name: str, status: str, timeout: float = 30) -> float:
        """Wait until server ``name``'s status is exactly ``status``; returns the seconds it took."""
        start = time.monotonic()
        seen = ""
        while time.monotonic() - start < timeout:
            seen = self.states()[name]
            if seen == status:
                return time.monotonic() - start
            time.sleep(CHECK_INTERVAL_MS / 4000)
        raise AssertionError(f"haproxy server {name} is {seen!r}, not {status!r}, after {timeout}s:\n{self.tail()}")

    def wait_all_up(self, timeout: float = 30) -> None:
        for name in self.servers:
            self.wait_for(name, "UP", timeout)

    def tail(self, chars: int = 4000) -> str:
        """The end of HAProxy's log (warnings, and every request that failed or was retried)."""
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 10) -> None:
        """Hard stop (SIGTERM) of its process group, then SIGKILL whatever is left, then reap."""
        if self.proc.returncode is not None:
            return  # reaped before: its group id may be another process's now
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        exited_unreaped(self.proc, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def start_haproxy(workdir: Path, backends: dict[str, int], timeout: float = 15) -> HAProxy:
    """Start HAProxy on a free 127.0.0.1 port in front of ``backends`` (server name -> 127.0.0.1 port).

    Returns once the stats socket answers; the backends may still be rising (``wait_all_up``). Skips when haproxy
    is missing (fails under CI=true).

    Raises:
        RuntimeError: the configuration was refused, haproxy exited, or its socket did not answer in ``timeout``.
    """
    binary = require_haproxy()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    sock = workdir / "haproxy.sock"
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check" for name, p in backends.items())
    config = workdir / "haproxy.cfg"
    config.write_text(
        CONFIG.format(
            socket=sock, port=port, backend=BACKEND, inter=CHECK_INTERVAL_MS, fall=FALL, rise=RISE, servers=servers
        )
    )
    check = subprocess.run([binary, "-c", "-q", "-f", str(config)], capture_output=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused {config}:\n{check.stdout.decode()}{check.stderr.decode()}")
    log = workdir / "haproxy.log"
    with log.open("wb") as out:
        # -db: stay in the foreground, our child; its own session, so stop() ends it with one killpg.
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    proxy = HAProxy(proc, port, sock, log, dict(backends))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited_unreaped(proc):
            proxy.stop()
            raise RuntimeError(f"haproxy exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            proxy.states()
            return proxy
        time.sleep(0.05)
    proxy.stop()
    raise RuntimeError(f"haproxy's stats socket did not answer in {timeout}s:\n{log.read_text()}")


__all__ = ["BACKEND", "HAProxy", "require_haproxy", "start_haproxy"]
