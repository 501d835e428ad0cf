"""One candidate configuration on a real server: a temporary repository with the patched config, `driftline serve`.

The temporary repository holds only the model being tuned and only the version measured (its folder a symlink):
other versions (kept loaded by the version policy, an alias or a route) would share the machine and skew the
numbers, and a policy written as an inline table (the demo's ``version_policy = { policy = "all" }``) cannot be
patched line by line. ``version_policy`` is patched only when the model's own policy would not select the version.
The server is started the way a user starts it, with its own SQLite store and capture directory in the work dir,
so a tune never writes into the user's store or captures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from driftline.config import load_settings
from driftline.errors import ConfigError
from driftline.repository import Repository
from driftline.tune.spec import config_patch
from driftline.tune.toml_patch import patch_config_text

if TYPE_CHECKING:
    from types import TracebackType

    from driftline.tune.spec import Candidate

__all__ = ["ServerFailed", "TunedServer", "process_tree"]

#: Tries at a free port: another process may take the one chosen before the server binds it.
PORT_TRIES: Final = 5
_LOG_LINES: Final = 5
_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


class ServerFailed(ConfigError):
    """The server did not start with the candidate, or its model did not load (the candidate is recorded failed)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, alive now (the worker processes of ``--workers N``), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name is in parentheses and may hold spaces: the fields after its last ')' are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 10_000:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, ()))
    return out


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _peak_rss_kib(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)


class TunedServer:
    """A driftline server serving one model version with a candidate's configuration (a context manager).

    Raises (on start):
        ServerFailed: the config cannot be patched, the server exits or its model does not load in time; the
            message is one line: what failed and the server log's last lines.
    """

    def __init__(
        self,
        repository: Path,
        model: str,
        version: int,
        candidate: Candidate,
        workdir: Path,
        server_config: Path | None = None,
        *,
        start_timeout_s: float = 120.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.repository = Path(repository)
        self.model = model
        self.version = version
        self.candidate = candidate
        self.workdir = Path(workdir)
        self.server_config = server_config
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = 0
        self.log = self.workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def infer_path(self) -> str:
        """The version's inference route."""
        return f"/v2/models/{self.model}/versions/{self.version}/infer"

    def __enter__(self) -> TunedServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def build_repository(self) -> Path:
        """The temporary repository in the work dir: the model folder with the patched config.toml, links to the
        version folder and to every other file of the model folder (reference data, its profile)."""
        source = Repository(self.repository).model(self.model)
        if self.version not in source.artifacts:
            versions = sorted(source.artifacts)
            raise ConfigError(f"model {self.model!r} has no version {self.version} (versions: {versions})")
        config_file = source.path / "config.toml"
        text = config_file.read_text() if config_file.is_file() else ""
        patch = config_patch(self.candidate, source.backend)
        if source.config.version_policy.select([self.version]) != [self.version]:
            patch["version_policy"] = {"policy": "specific", "versions": [self.version]}
        patched = patch_config_text(text, patch, str(config_file))
        folder = self.workdir / "repository" / self.model
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.toml").write_text(patched)
        for entry in source.path.iterdir():
            keep = entry.name == str(self.version) or not (entry.is_dir() or entry.name == "config.toml")
            link = folder / entry.name
            if keep and not link.exists():
                link.symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
        return folder.parent

    def _environment(self) -> dict[str, str]:
        # The user's DRIFTLINE_* settings would point the server at their store or repository: only the file's.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        env["DRIFTLINE_DATABASE"] = str(self.workdir / "driftline.db")
        env["DRIFTLINE_CAPTURE__DIRECTORY"] = str(self.workdir / "captures")
        return env

    def _check_server_config(self) -> None:
        if self.server_config is None:
            return
        settings = load_settings(str(self.server_config), environ={})
        if settings.registry.source:
            raise ConfigError(
                f"{self.server_config}: [registry] source is set; the tuner serves a temporary repository a sync "
                "would write into: tune with a server config without it"
            )

    def start(self) -> None:
        """Build the repository, start the server, wait until the version is ready (see the class)."""
        try:
            self._check_server_config()
            root = self.build_repository()
        except ConfigError as exc:
            raise ServerFailed(str(exc)) from None
        for attempt in range(PORT_TRIES):
            self.port = _free_port()
            self._spawn(root)
            if self._wait_ready(last_try=attempt == PORT_TRIES - 1):
                return

    def _spawn(self, root: Path) -> None:
        command = [sys.executable, "-m", "driftline.cli", "serve", str(root), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.candidate.workers)]
        if self.server_config is not None:
            command += ["--config", str(self.server_config)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, cwd=self.workdir, env=self._environment(), stdout=out, stderr=subprocess.STDOUT
            )

    def _tail(self) -> str:
        try:
            lines = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no server log"
        return " | ".join(lines[-_LOG_LINES:]) or "the server log is empty"

    def _get(self, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310 - http://127.0.0.1 only
                return int(answer.status), answer.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def _load_failure(self) -> str | None:
        """Why the version is not loaded, from the repository index (None: not known to have failed)."""
        with contextlib.suppress(OSError, ValueError, msgspec.DecodeError):
            status, body = self._get("/v2/repository/index", b"{}")
            if status == 200:
                for row in msgspec.json.decode(body):
                    mine = row.get("name") == self.model and row.get("version") in (None, str(self.version))
                    if mine and row.get("state") == "UNAVAILABLE" and row.get("reason"):
                        return str(row["reason"])
        return None

    def _wait_ready(self, *, last_try: bool) -> bool:
        """True once ready; False when the port was taken (try another); else stop and raise ServerFailed."""
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        ready = f"/v2/models/{self.model}/versions/{self.version}/ready"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                tail = self._tail()
                if f"cannot listen on 127.0.0.1:{self.port}" in tail and not last_try:
                    return False
                raise ServerFailed(f"{self.candidate.label()}: the server exited with {code}: {tail}")
            with contextlib.suppress(OSError):
                status, _ = self._get(ready)
                if status == 200:
                    return True
                # The HTTP front end answers only after start-up loading: a version not ready now failed to load.
                why = self._load_failure()
                if why is not None:
                    self.stop()
                    raise ServerFailed(f"{self.candidate.label()}: version {self.version} did not load: {why}")
            time.sleep(0.1)
        self.stop()
        raise ServerFailed(
            f"{self.candidate.label()}: version {self.version} not ready after {self.start_timeout_s:g} s: "
            + self._tail()
        )

    def pids(self) -> list[int]:
        """The server's processes now (none once stopped)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return process_tree(self.proc.pid)

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the server's live processes have used since they started."""
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def peak_rss_mib(self) -> float:
        """The sum of the server processes' peak resident memory (VmHWM), MiB: an upper bound of the tree's peak."""
        return sum(_peak_rss_kib(pid) for pid in self.pids()) / 1024

    def stop(self) -> int | None:
        """SIGTERM (the server drains), a bounded wait, then SIGKILL for the whole tree; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            tree = process_tree(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                for pid in tree:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                proc.wait(self.stop_timeout_s)
        return proc.returncode
