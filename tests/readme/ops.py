"""The README's operations block, run as printed against `make serve`: the alerting rules and the Grafana dashboard
written for the demo's models, and the SLO answer with a number for each."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from tests.readme.blocks import Block, commands


def check_ops_block(block: Block, cwd: Path, proc: subprocess.CompletedProcess[str]) -> None:
    """What the block's three commands left: the rules file, the dashboard, and the SLOs curl printed."""
    assert [line.split()[:3] for line in commands(block)][:2] == [
        ["driftline", "ops", "rules"],
        ["driftline", "ops", "grafana"],
    ], commands(block)
    rules = yaml.safe_load((cwd / "driftline-rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    models = {r["labels"].get("model") for r in alerts}
    assert "iris" in models, models  # the demo model's SLOs have their alerts (and iris_torch's, with torch)
    dashboard = json.loads((cwd / "driftline-grafana.json").read_text())
    assert dashboard["panels"], dashboard.keys()
    answer = json.loads(proc.stdout)
    assert answer, proc.stdout
