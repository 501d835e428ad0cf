"""Several `driftline serve` replicas behind a real HAProxy, and a bounded load that records every answer.

Every replica serves the same repository folder from the same database, each from its own working folder on a
port fixed for the life of the group, so a replica started again comes back where HAProxy looks for it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from tests.e2e.conftest import Server, free_port, start_server
from tests.haproxy import HAProxy, start_haproxy


@dataclass
class Replicas:
    """N replicas (``r0`` ... in HAProxy) and the proxy in front of them."""

    repository: Path
    workdir: Path
    database: str
    env: dict[str, str]
    args: list[str]
    ports: list[int]
    servers: list[Server | None] = field(default_factory=list)
    proxy: HAProxy | None = None

    @property
    def url(self) -> str:
        """HAProxy's front end."""
        assert self.proxy is not None
        return self.proxy.url

    def server(self, i: int) -> Server:
        server = self.servers[i]
        assert server is not None, f"replica {i} is not running"
        return server

    def start(self, i: int) -> Server:
        """Start replica ``i`` on its port and wait until it is ready."""
        folder = self.workdir / f"r{i}"
        folder.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "DRIFTLINE_DATABASE": self.database}
        server = start_server(self.repository, folder, env=env, extra_args=self.args, port=self.ports[i])
        self.servers[i] = server
        return server

    def stop(self, i: int, timeout: float = 60) -> int:
        """SIGTERM replica ``i`` and wait for it to exit; returns its exit status."""
        code = self.server(i).stop(timeout)
        self.servers[i] = None
        return code

    def kill(self, i: int) -> None:
        """SIGKILL replica ``i`` (no shutdown of any kind) and reap it."""
        proc = self.server(i).proc
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.servers[i] = None

    def logs(self, chars: int = 3000) -> str:
        """The end of every replica's log and HAProxy's, for a failure message."""
        parts = [
            f"--- {log.parent.name}/{log.name}\n{log.read_text()[-chars:]}" for log in self.workdir.glob("r*/*.log")
        ]
        if self.proxy is not None:
            parts.append(f"--- haproxy\n{self.proxy.tail(chars)}")
        return "\n".join(parts)

    def close(self) -> None:
        for i, server in enumerate(self.servers):
            if server is not None:
                with contextlib.suppress(Exception):
                    self.stop(i, timeout=30)
        if self.proxy is not None:
            self.proxy.stop()


def start_replicas(
    repository: Path,
    workdir: Path,
    database: str,
    count: int = 3,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> Replicas:
    """Start ``count`` replicas one after another (the first one migrates the shared store; the next ones find it
    done), then HAProxy in front of them; returns once HAProxy has checked every one of them up."""
    group = Replicas(repository, workdir, database, env or {}, args or [], [free_port() for _ in range(count)])
    group.servers = [None] * count
    try:
        for i in range(count):
            group.start(i)
        group.proxy = start_haproxy(workdir / "haproxy", {f"r{i}": port for i, port in enumerate(group.ports)})
        group.proxy.wait_all_up()
    except BaseException:
        group.close()
        raise
    return group


class Answer(NamedTuple):
    """One request of a Load: when it started and ended (monotonic s), its status (0: no answer) and what named the
    version that answered (or the error)."""

    start: float
    end: float
    status: int
    version: str

    @property
    def ok(self) -> bool:
        return self.status == 200


class Load:
    """``threads`` clients posting ``body`` to ``url + path`` back to back, each on one keep-alive connection, until
    stop() or ``max_requests`` each or ``max_seconds``; every answer is kept."""

    THREADS = 3

    def __init__(
        self,
        url: str,
        path: str,
        body: dict[str, Any],
        threads: int = THREADS,
        max_requests: int = 20_000,
        max_seconds: float = 90,
        pause_s: float = 0.002,
    ) -> None:
        self.url, self.path, self.body = url, path, body
        self.max_requests, self.max_seconds, self.pause_s = max_requests, max_seconds, pause_s
        self._stop = threading.Event()
        self._answers: list[list[Answer]] = [[] for _ in range(threads)]
        self._threads = [threading.Thread(target=self._run, args=(a,), daemon=True) for a in self._answers]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, answers: list[Answer]) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set() and len(answers) < self.max_requests and time.monotonic() < deadline:
                start = time.monotonic()
                try:
                    r = http.post(self.path, json=self.body)
                    version = r.json().get("model_version", r.text) if r.status_code == 200 else r.text
                    answers.append(Answer(start, time.monotonic(), r.status_code, str(version)))
                except httpx.HTTPError as exc:
                    answers.append(Answer(start, time.monotonic(), 0, repr(exc)))
                time.sleep(self.pause_s)

    def stop(self) -> list[Answer]:
        """Stop every client (each finishes its request) and return every answer, in start order."""
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return sorted((a for answers in self._answers for a in answers), key=lambda a: a.start)


__all__ = ["Answer", "Load", "Replicas", "start_replicas"]
