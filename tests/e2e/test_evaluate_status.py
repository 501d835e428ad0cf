"""After `driftline evaluate`, a running server's status shows the evaluation with the version, and a proposal of
that version shows it to whoever approves it: written by the command into the server's store while it serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_evaluation_repository, write_server_config

from driftline.repository.demo import iris_like_data

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("evaluate")
    config = write_server_config(workdir / "server.toml")
    root = build_evaluation_repository(workdir / "models", iris_weights)
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    srv.workdir = workdir
    yield srv
    srv.stop()


def cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRIFTLINE_DATABASE": str(server.workdir / "driftline.db")}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def versions(server) -> dict[str, dict]:
    r = httpx.get(f"{server.url}/v1/admin/models/iris", headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    return {v["version"]: v for v in r.json()["versions"]}


def test_the_status_and_a_proposal_show_the_latest_evaluation(server):
    assert all("evaluation" not in v for v in versions(server).values())
    x, y = iris_like_data(300, seed=21)
    data = server.workdir / "labeled.parquet"
    pl.DataFrame({f"f{i}": x[:, i] for i in range(4)}).with_columns(pl.Series("y", y)).write_parquet(data)
    out = cli(server, "evaluate", "iris:1", str(data), "--target", "y", "--repository", str(server.root), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)

    shown = versions(server)
    assert "evaluation" not in shown["2"]
    evaluation = shown["1"]["evaluation"]
    assert evaluation["id"] == result["id"]
    assert evaluation["rows"] == 300
    assert evaluation["dataset"] == str(data)
    assert evaluation["target"] == "y"
    assert evaluation["sha256"] == shown["1"]["sha256"]
    assert evaluation["metrics"] == result["metrics"]
    assert set(evaluation["metrics"]) == {"accuracy", "f1_macro"}

    body = {"version": 1, "alias": "champion", "reason": "evaluated"}
    r = httpx.post(f"{server.url}/v1/admin/models/iris/proposals", json=body, headers=HEADERS, timeout=30)
    assert r.status_code in (200, 201), r.text
    proposal = httpx.get(f"{server.url}/v1/admin/proposals/{r.json()['id']}", headers=HEADERS, timeout=10)
    assert proposal.status_code == 200, proposal.text
    assert proposal.json()["evaluation"] == evaluation

    status = cli(server, "models", "status", "iris", "--url", server.url, "--key", ADMIN_KEY)
    assert status.returncode == 0, status.stderr
    line = next(line for line in status.stdout.splitlines() if "evaluated" in line)
    assert line.startswith("  version 1: evaluated ")
    assert f"on {data} (300 rows, target 'y')" in line
    assert f"accuracy={result['metrics']['accuracy']:.4f}" in line


def test_a_proposal_of_a_version_never_evaluated_says_so(server):
    body = {"version": 2, "alias": "staging"}
    r = httpx.post(f"{server.url}/v1/admin/models/iris/proposals", json=body, headers=HEADERS, timeout=30)
    assert r.status_code in (200, 201), r.text
    proposal = httpx.get(f"{server.url}/v1/admin/proposals/{r.json()['id']}", headers=HEADERS, timeout=10)
    assert proposal.status_code == 200, proposal.text
    assert proposal.json()["evaluation"] is None
