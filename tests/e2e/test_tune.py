"""`driftline tune` as a user runs it: the demo model over a tiny space with a short budget, on real servers.

The report, the JSON and the patch must agree; the recommended configuration must load; `--apply` must write it into
config.toml (keeping the old file) and reload the model on a running server, through the audited repository API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import start_server

from driftline.cli.main import main
from driftline.repository import load_model_config
from driftline.repository.demo import build_demo_repository
from driftline.tune.toml_patch import patch_config_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Two candidates (instances 1 and 2; the knobs --space does not name stay at the demo's own values, so
# instances=1 is its default configuration) at two concurrencies, in short windows: the smallest tune that is still one.
FLAGS = [
    "--slo",
    "p99=250ms",
    "--load",
    "concurrency=1,4",
    "--space",
    "instances=1,2",
    "--search",
    "brute",
    "--window",
    "0.25s",
    "--warmup",
    "0.25s",
    "--max-windows",
    "3",
    "--budget",
    "2m",
]


def tune(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "tune", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "DRIFTLINE_DATABASE": str(cwd / "driftline.db")},
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tune")
    build_demo_repository(root / "models")
    return root


@pytest.fixture(scope="module")
def tuned(demo: Path) -> tuple[dict, Path]:
    proc = tune(demo, "iris:2", "--repository", "models", "--out", "report", *FLAGS)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # one JSON summary on stdout, progress on stderr
    return json.loads(lines[0]), demo / "report"


def test_the_summary_report_json_and_patch_agree(tuned: tuple[dict, Path]) -> None:
    summary, out = tuned
    assert summary["model"] == "iris"
    assert summary["version"] == 2
    assert summary["points_in_space"] == 2
    assert summary["points_measured"] == 2
    result = json.loads((out / "tune.json").read_text())
    html = (out / "report.html").read_text()
    patch = tomllib.loads((out / "config.patch.toml").read_text())
    chosen = summary["recommended"]["config"]
    assert patch["instances"] == chosen["instances"]
    assert result["recommended"]["instances"] == chosen["instances"]
    # Every measured point is in the JSON and in the page's table; the default is measured and shown beside.
    assert len(result["measurements"]) == 2
    for m in result["measurements"]:
        assert len(m["points"]) == 2
        for p in m["points"]:
            assert f"<td>{p['rps']:.1f}</td>" in html
    assert summary["default"]["config"]["instances"] == 1
    assert summary["recommended"]["point"]["p99_ms"] <= 250
    assert summary["margin_ms"] == pytest.approx(250 - summary["recommended"]["point"]["p99_ms"], abs=1e-3)


def test_the_recommended_configuration_loads(tuned: tuple[dict, Path], tmp_path: Path) -> None:
    summary, out = tuned
    root = tmp_path / "models"
    build_demo_repository(root)
    # The patch file's keys, set in the demo's own config.toml (what --apply does, comments kept).
    config = root / "iris" / "config.toml"
    patch = tomllib.loads((out / "config.patch.toml").read_text())
    config.write_text(patch_config_text(config.read_text(), patch))
    assert load_model_config(config).instances == summary["recommended"]["config"]["instances"]
    server = start_server(root, tmp_path)
    try:
        answer = httpx.get(f"{server.url}/v2/models/iris/versions/2/config", timeout=10).json()
        assert answer["instance_group"][0]["count"] == summary["recommended"]["config"]["instances"]
    finally:
        server.stop()


def test_apply_writes_the_config_and_reloads_the_running_server(tmp_path: Path) -> None:
    root = tmp_path / "models"
    build_demo_repository(root)
    before = (root / "iris" / "config.toml").read_text()
    made = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "keys", "create", "tuner", "--role", "operator"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "DRIFTLINE_DATABASE": str(tmp_path / "driftline.db")},
    )
    key = made.stdout.strip()
    server = start_server(root, tmp_path)
    try:
        flags = [f.replace("instances=1,2", "instances=2") for f in FLAGS]
        proc = tune(tmp_path, "iris", "--repository", "models", "--apply", "--url", server.url, "--key", key, *flags)
        assert proc.returncode == 0, proc.stderr
        applied = json.loads(proc.stdout)["applied"]
        assert applied["reloaded"] is True, applied
        assert Path(applied["backup"]).read_text() == before
        assert load_model_config(root / "iris" / "config.toml").instances == 2
        headers = {"Authorization": f"Bearer {key}"}
        answer = httpx.get(f"{server.url}/v2/models/iris/config", headers=headers, timeout=10).json()
        assert answer["instance_group"][0]["count"] == 2
        audit = httpx.get(f"{server.url}/v1/admin/audit", params={"model": "iris"}, headers=headers, timeout=10)
        # The reload is on record under the key that asked for it.
        assert any(e["action"] == "load" and e["actor"] == "key:tuner" for e in audit.json()), audit.json()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["iris", "--repository", "nowhere", "--slo", "p99=1ms"], "no model repository at nowhere"),
        (["iris", "--repository", "models", "--slo", "p99=fast"], "--slo 'p99=fast'"),
        (["iris", "--repository", "models", "--slo", "p99=1ms", "--load", "users=3"], "--load 'users=3'"),
        (["iris", "--repository", "models", "--slo", "p99=1ms", "--budget", "soon"], "--budget 'soon'"),
        (["iris", "--repository", "models", "--slo", "p99=1ms", "--space", "color=red"], "color"),
        (["nosuch", "--repository", "models", "--slo", "p99=1ms"], "nosuch"),
        (["iris:9", "--repository", "models", "--slo", "p99=1ms"], "9"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    demo: Path, args: list[str], words: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process (the same entry point the command runs): seven interpreters would cost ~10 s for nothing.
    monkeypatch.chdir(demo)
    monkeypatch.setenv("DRIFTLINE_DATABASE", str(demo / "driftline.db"))
    assert main(["tune", *args]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("driftline: error: ")
    assert words in lines[0], lines[0]
