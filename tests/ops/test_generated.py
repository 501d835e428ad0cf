"""``driftline ops rules`` and ``driftline ops grafana`` as a user runs them: the rules pass ``promtool check
rules`` and fire on the thresholds the server's own status uses; the dashboard validates against Grafana's
dashboard kind (tests/fixtures/grafana_dashboard.schema.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from driftline.ops.grafana import dashboard
from driftline.ops.rules import rules
from driftline.ops.slo import ALERTS, WINDOWS, Slo

SCHEMA = Path(__file__).parents[1] / "fixtures" / "grafana_dashboard.schema.json"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "ops", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_rules_file_passes_promtool(repo: Path, tmp_path: Path) -> None:
    (repo / "iris" / "config.toml").write_text(
        (repo / "iris" / "config.toml").read_text() + "\n[slo]\navailability = 0.99\nlatency_threshold_ms = 20\n"
    )
    out = tmp_path / "rules.yml"
    done = _cli("rules", "--repository", str(repo), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = yaml.safe_load(out.read_text())
    recorded = {r["record"] for r in loaded["groups"][0]["rules"]}
    assert len(recorded) == 2 * len(WINDOWS)
    alerts = loaded["groups"][1]["rules"]
    assert {(a["labels"]["model"], a["labels"]["slo"], a["labels"]["driftline_alert"]) for a in alerts} == {
        (m, k, a) for m in ("iris", "mlp") for k in ("availability", "latency") for a in ("page", "ticket")
    }
    iris_page = next(
        a
        for a in alerts
        if (a["labels"]["model"], a["labels"]["slo"], a["alert"]) == ("iris", "availability", "DriftlineSloPage")
    )
    # The alert compares the recorded ratio with factor x budget: 14.4 x 0.01 for the 0.99 objective.
    assert "> 0.144" in iris_page["expr"]
    assert 'rate1h{model="iris"}' in iris_page["expr"]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    check = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(recorded) + len(alerts)} rules found" in check.stdout


def test_rules_refusals_are_one_line(tmp_path: Path) -> None:
    done = _cli("rules", "--repository", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "does not exist" in done.stderr
    bad = tmp_path / "models" / "iris"
    bad.mkdir(parents=True)
    (bad / "config.toml").write_text("[slo]\nlatency_objective = 2\n")
    done = _cli("rules", "--repository", str(tmp_path / "models"), cwd=tmp_path)
    assert done.returncode == 2
    assert "slo.latency_objective" in done.stderr
    assert "Traceback" not in done.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: the same file with a broken expression is refused."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    doc = rules([Slo("iris", "availability", 0.999, None, 28 * 86400.0)])
    doc["groups"][1]["rules"][0]["expr"] += " and ("
    out = tmp_path / "broken.yml"
    out.write_text(json.dumps(doc))
    assert subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, check=False).returncode != 0


def test_grafana_dashboard_matches_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    done = _cli("grafana", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    board = json.loads(out.read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(board)
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Traffic", "Latency", "Errors", "Queue and batches", "SLOs", "Processes"]
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for metric in ("driftline_request_latency_seconds_bucket", "driftline_queue_depth", "process_cpu_seconds_total"):
        assert metric in exprs
    burn = next(p for p in board["panels"] if p["title"] == "Availability burn rate")
    assert [s["value"] for s in burn["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]] == sorted(
        a.factor for a in ALERTS
    )
    # The validation can fail: a panel wider than the grid is refused.
    broken = dashboard()
    broken["panels"][1]["gridPos"]["w"] = 30
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)
