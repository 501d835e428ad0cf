"""`driftline serve` in a bad state, as a user types it: one line on stderr, nothing else, exit 2, nothing loaded.

Each test starts the real command in a fresh working directory. A refusal that came after loading would build
./demo-models first: every test checks that it did not.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.conftest import free_port
from tests.helpers import assert_one_line_refusal, build_test_repository

pytestmark = pytest.mark.e2e


def serve(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "serve", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused(out: subprocess.CompletedProcess[str], cwd: Path, *words: str) -> str:
    """Exactly one line, on stderr, naming ``words``; exit 2; the demo repository was not built."""
    line = assert_one_line_refusal(out, *words)
    assert not (cwd / "demo-models").exists()
    return line


# -- the repository (item 2) -----------------------------------------------------------------------------------------


def test_a_missing_repository_named_by_the_user_is_refused_not_filled_with_the_demo(tmp_path: Path):
    out = serve(tmp_path, "mistyped/path", "--port", str(free_port()))
    assert_refused(out, tmp_path, "mistyped/path", "does not exist")
    assert not (tmp_path / "mistyped").exists()
    assert not (tmp_path / "driftline.db").exists()  # refused before anything was written


def test_the_missing_default_repository_with_create_demo_off_is_refused(tmp_path: Path):
    out = serve(tmp_path, "--port", str(free_port()), env={"DRIFTLINE_CREATE_DEMO": "false"})
    assert_refused(out, tmp_path, "demo-models", "create_demo = false")


def test_a_repository_that_is_a_file_is_refused(tmp_path: Path):
    (tmp_path / "models").write_text("not a folder\n")
    assert_refused(serve(tmp_path, "models", "--port", str(free_port())), tmp_path, "not a directory")


# -- flags, port, registry, database (item 7) ------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "value"), [("--port", "99999"), ("--port", "0"), ("--workers", "0")])
def test_an_out_of_range_flag_is_named(tmp_path: Path, flag: str, value: str):
    line = assert_refused(serve(tmp_path, flag, value), tmp_path, f"{flag} {value}")
    assert "defaults" not in line


def test_a_busy_port_is_refused_before_anything_loads(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # No repository argument: were the port checked after loading, ./demo-models would exist now.
        out = serve(tmp_path, "--port", str(port))
    assert_refused(out, tmp_path, f"127.0.0.1:{port}", "in use")


def test_an_unknown_registry_scheme_is_refused(tmp_path: Path):
    out = serve(tmp_path, "--port", str(free_port()), "--registry", "nosuch://bucket/registry")
    assert_refused(out, tmp_path, "nosuch://bucket/registry")


def _missing_fsspec_package() -> tuple[str, str]:
    """A protocol fsspec knows whose package is not installed here, and that package (the test extras bring s3fs
    and gcsfs in, so a fixed choice of protocol would skip the test)."""
    from fsspec.registry import known_implementations

    for protocol in ("oci", "abfs", "s3", "gcs"):
        package = known_implementations[protocol]["class"].split(".")[0]
        if importlib.util.find_spec(package) is None:
            return protocol, package
    pytest.skip("every fsspec package tried is installed here")


def test_a_registry_scheme_whose_package_is_missing_is_refused(tmp_path: Path):
    protocol, package = _missing_fsspec_package()
    out = serve(tmp_path, "--port", str(free_port()), "--registry", f"{protocol}://bucket/registry")
    assert_refused(out, tmp_path, f"{protocol}://bucket/registry", package)


def _valid_store(path: Path) -> bytes:
    from driftline.store.audit import AuditLog
    from driftline.store.db import open_database

    db = open_database(path)
    audit = AuditLog(db)
    for i in range(2000):  # enough rows for a multi-page table and index
        audit.record("load", f"model-{i % 7}", reason="x" * 80)
    db.close()
    return path.read_bytes()


def _damage(kind: str, db: Path) -> None:
    if kind == "not_sqlite":
        db.write_bytes(b"these bytes are no database\n" * 200)
    elif kind == "truncated":
        data = _valid_store(db)
        db.write_bytes(data[: len(data) // 2])
    elif kind == "integrity":
        # An index nothing reads at start, scribbled over: the server would open and serve on this file, and
        # only PRAGMA integrity_check finds the damage.
        _valid_store(db)
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE scratch (x TEXT)")
        conn.execute("CREATE INDEX scratch_x ON scratch (x)")
        conn.executemany("INSERT INTO scratch VALUES (?)", [(f"{i:06d}" * 10,) for i in range(2000)])
        conn.commit()
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'scratch_x'").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
        data = bytearray(db.read_bytes())
        data[(root - 1) * page : root * page] = b"\x55" * page
        db.write_bytes(bytes(data))
    elif kind == "unwritable":
        # Root writes through chmod; a file where the database's folder should be stops everyone.
        db.parent.parent.mkdir(parents=True, exist_ok=True)
        db.parent.write_text("a file, not a folder\n")


@pytest.mark.parametrize("kind", ["not_sqlite", "truncated", "integrity", "unwritable"])
def test_a_damaged_or_unwritable_database_is_refused(tmp_path: Path, kind: str):
    db = tmp_path / "store" / "driftline.db"
    db.parent.mkdir()
    if kind == "unwritable":
        shutil.rmtree(db.parent)
    _damage(kind, db)
    out = serve(tmp_path, "--port", str(free_port()), env={"DRIFTLINE_DATABASE": str(db)})
    assert_refused(out, tmp_path, "database", "store")


def test_a_read_only_database_is_refused(tmp_path: Path):
    # SQLite opens a file it may not write read-only without a word; root ignores chmod, not the immutable flag.
    db = tmp_path / "driftline.db"
    _valid_store(db)
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        out = serve(tmp_path, "--port", str(free_port()), env={"DRIFTLINE_DATABASE": str(db)})
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert_refused(out, tmp_path, "database", "readonly")


# -- exposure without keys (item 21) ---------------------------------------------------------------------------------


def _unshare_net() -> list[str]:
    """A private network namespace (only a loopback inside): a server that wrongly starts is reachable by nobody."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    return ["unshare", "-n"]


def test_a_non_loopback_host_without_keys_is_refused(tmp_path: Path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    out = subprocess.run(
        [*_unshare_net(), sys.executable, "-m", "driftline.cli", "serve", str(root), "--host", "0.0.0.0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_refused(out, tmp_path, "--host 0.0.0.0", "--allow-unauthenticated")
