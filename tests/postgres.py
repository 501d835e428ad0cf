"""A real PostgreSQL server (Debian's `postgresql` package) on 127.0.0.1 for tests, one per test process.

The cluster lives in a fresh temporary directory with trust authentication and no durability (fsync off): it is
thrown away at the end. PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged
system user and every binary runs under ``setpriv`` (which execs, so the server is our child and leads its own
process group, as tests/mlflow_server.py's does).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from tests.e2e.conftest import free_port
from tests.helpers import exited_unreaped

SUPERUSER = "driftline"  # the cluster's superuser (initdb -U), the user of every URL
SYSTEM_USER = "driftline-pg"  # the unprivileged owner of the cluster when the tests run as root
SKIP_MESSAGE = "make tools installs PostgreSQL"


def find_binaries() -> Path | None:
    """The folder holding initdb and postgres: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("postgres") is not None:
        return Path(initdb).resolve().parent
    folders = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    return next((f for f in folders if (f / "initdb").exists() and (f / "postgres").exists()), None)


def require_binaries() -> Path:
    """find_binaries(), or skip the test (fail under CI=true, where a missing server is a broken setup)."""
    folder = find_binaries()
    if folder is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not installed: {SKIP_MESSAGE}")
        pytest.skip(SKIP_MESSAGE)
    return folder


def unprivileged_user() -> pwd.struct_passwd:
    """SYSTEM_USER, created when missing (two test processes may race to create it: the loser finds it made)."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        check=False,
    )
    return pwd.getpwnam(SYSTEM_USER)


@dataclass
class Postgres:
    """A running server; ``new_database()`` hands each caller an empty database of its own."""

    proc: subprocess.Popen[bytes]
    port: int
    folder: Path
    log: Path
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        """``postgresql://driftline@127.0.0.1:<port>/<database>``."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """CREATE DATABASE a fresh empty database and return its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a name made here, never input
        return self.url(name)

    def stop(self, timeout: float = 20) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, disconnect clients), then end the whole group."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
            exited_unreaped(self.proc, timeout)
            # Backends may outlive the postmaster by a moment; the group stays ours while it is not reaped.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(timeout: float = 30) -> Postgres:
    """initdb a cluster in a new temporary folder and start it on a free 127.0.0.1 port; wait until it connects.

    Skips when PostgreSQL is not installed (fails under CI=true). The server is also stopped at interpreter exit,
    should the caller's own stop never run.

    Raises:
        RuntimeError: initdb failed, the server exited, or it did not accept connections within ``timeout``.
    """
    binaries = require_binaries()
    # Under /tmp itself, not pytest's tmp_path: that is root's 0700 folder, which the system user cannot enter.
    folder = Path(tempfile.mkdtemp(prefix="driftline-pg-"))
    data, log = folder / "data", folder / "postgres.log"
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = unprivileged_user()
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"]
    init = subprocess.run(
        [*prefix, *initdb, "--locale=C", "--no-sync", "--no-instructions"],
        env=env,
        capture_output=True,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout.decode()}{init.stderr.decode()}")
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(folder),
        "fsync": "off",  # a throwaway cluster: durability buys nothing and costs seconds
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "300",  # several replicas, each with its workers' connections, per test process
    }
    command = [*prefix, str(binaries / "postgres"), "-D", str(data)]
    command += [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]
    with log.open("wb") as out:
        # Its own session, so stop() can end the postmaster and its backends with one killpg.
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Postgres(proc, port, folder, log)
    atexit.register(server.stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited_unreaped(proc):
            text = log.read_text()
            server.stop()
            raise RuntimeError(f"postgres exited:\n{text}")
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(server.url(), connect_timeout=1):
            return server
        time.sleep(0.05)
    text = log.read_text()
    server.stop()
    raise RuntimeError(f"postgres not accepting connections after {timeout}s:\n{text}")


def end_sessions(url: str, application: str = "driftline") -> int:
    """End every server session of ``application`` on the database of ``url`` (what a restart does to them)."""
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
            (dbname, application),
        ).fetchall()
    return len(rows)


__all__ = [
    "SKIP_MESSAGE",
    "SUPERUSER",
    "Postgres",
    "end_sessions",
    "find_binaries",
    "require_binaries",
    "start_postgres",
]
