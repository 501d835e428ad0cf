"""The `driftline` command as a user runs it: subprocesses, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import write_config


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_models_list(repo: Path):
    out = run("models", "list", "--repository", str(repo))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("MODEL")
    assert any(line.startswith("iris") and "1,2" in line for line in lines)


def test_models_list_reports_a_bad_config_in_its_row(repo: Path):
    write_config(repo / "mlp", "instances = 0\n")
    out = run("models", "list", "--repository", str(repo))
    assert out.returncode == 0
    assert "instances" in out.stdout


def test_bad_server_config_is_one_line_exit_2(tmp_path: Path):
    cfg = tmp_path / "server.toml"
    cfg.write_text("[http]\nport = 'x'\n")
    out = run("serve", "--config", str(cfg))
    assert out.returncode == 2
    assert out.stderr.startswith("driftline: error:")
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_version_flag():
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("driftline ")


def test_keys_create_writes_an_audit_record(tmp_path: Path):
    from driftline.store.audit import AuditLog
    from driftline.store.db import open_database

    db_path = tmp_path / "driftline.db"
    out = run("keys", "create", "ci", "--role", "predictor", "--database", str(db_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("dl_")
    db = open_database(db_path)
    try:
        events = AuditLog(db).events(action="key_created")
    finally:
        db.close()
    assert len(events) == 1
    assert events[0].actor.startswith("cli:")
    assert events[0].reason == "ci: predictor"


def test_score_names_every_bad_input_on_one_line(repo: Path, tmp_path: Path):
    (tmp_path / "junk.parquet").write_text("not parquet\n")
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    out = run(
        "score", "iris", "missing.parquet", "junk.parquet", "--output", "out", "--repository", str(repo), cwd=tmp_path
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "missing.parquet" in out.stderr
    assert "junk.parquet" in out.stderr
    out = run("score", "iris", "cols.csv", "--output", "out", "--repository", str(repo), cwd=tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "do not fit the model" in out.stderr
