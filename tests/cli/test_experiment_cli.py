"""`driftline models experiment create|list|report|stop` against a real server: the tables, the JSON, the HTML
file; every user error one line on stderr, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, assert_one_line_refusal, build_test_repository, write_server_config

pytestmark = pytest.mark.e2e

SPEC = {
    "model": "iris",
    "name": "checkout",
    "arms": [{"name": "control", "target": "champion"}, {"name": "treatment", "target": "challenger"}],
    "design": {"canary": 30},
    "metrics": [{"name": "errors", "kind": "error_rate", "direction": "decrease"}],
    "primary": "errors",
    "rules": [{"metric": "errors", "require": "min_sample", "n": 50}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("experiment-cli")
    config = write_server_config(workdir / "server.toml", f'[capture]\ndirectory = "{workdir / "captures"}"\n')
    root = build_test_repository(workdir / "models", iris_weights)
    with (root / "iris" / "config.toml").open("a") as f:
        f.write("aliases = { champion = 1, challenger = 2 }\n")
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


def experiment(server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "models", "experiment", *args, "--url", server.url, "--key", ADMIN_KEY],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return out.stdout


def test_create_list_report_and_stop(server, tmp_path):
    spec = tmp_path / "exp.json"
    spec.write_text(json.dumps(SPEC))
    created = json.loads(ok(experiment(server, "create", str(spec))))
    assert created["versions"] == {"control": 1, "treatment": 2}
    eid = str(created["id"])

    table = ok(experiment(server, "list", "iris"))
    assert table.splitlines()[0].split()[:4] == ["ID", "NAME", "STATE", "DESIGN"]
    assert f"{eid} " in table
    assert "checkout" in table
    assert "canary" in table
    assert "control=1,treatment=2" in table
    assert [e["id"] for e in json.loads(ok(experiment(server, "list", "iris", "--json")))] == [created["id"]]

    report = ok(experiment(server, "report", "iris", eid))
    assert f"experiment {eid} 'checkout' on model iris: running" in report
    assert "sample ratio: ok" in report
    assert "errors (primary, error_rate, decrease is better" in report
    assert "treatment - control:" in report
    assert "FAIL  errors: at least 50 units" in report
    assert "ready for promotion: no" in report
    assert json.loads(ok(experiment(server, "report", "iris", eid, "--json")))["ready"] is False
    page = tmp_path / "report.html"
    assert "wrote" in ok(experiment(server, "report", "iris", eid, "--html", str(page)))
    parser = HTMLParser()
    parser.feed(page.read_text())  # a whole page, parsed without error
    assert "checkout" in page.read_text()

    stopped = json.loads(ok(experiment(server, "stop", "iris", eid, "--reason", "done")))
    assert stopped["state"] == "stopped"
    assert stopped["stop_reason"] == "done"
    assert "stopped" in ok(experiment(server, "list", "iris", "--state", "stopped"))
    assert_one_line_refusal(experiment(server, "stop", "iris", eid), "HTTP 409", "stopped already")


def test_create_from_stdin_with_the_model_flag(server):
    body = {k: v for k, v in SPEC.items() if k != "model"}
    created = json.loads(ok(experiment(server, "create", "-", "--model", "iris", stdin=json.dumps(body))))
    ok(experiment(server, "stop", "iris", str(created["id"])))


def test_user_errors_are_one_line(server, tmp_path):
    assert_one_line_refusal(experiment(server, "create", str(tmp_path / "missing.json")), "cannot read")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_refusal(experiment(server, "create", str(bad)), "is not JSON")
    bad.write_text("[1, 2]")
    assert_one_line_refusal(experiment(server, "create", str(bad)), "one JSON object")
    bad.write_text(json.dumps({k: v for k, v in SPEC.items() if k != "model"}))
    assert_one_line_refusal(experiment(server, "create", str(bad)), "--model")
    wrong = {**SPEC, "arms": [{"name": "control", "target": "1"}, {"name": "t", "target": "7"}]}
    bad.write_text(json.dumps(wrong))
    assert_one_line_refusal(experiment(server, "create", str(bad)), "HTTP 409", "arms[1].target '7'")
    assert_one_line_refusal(experiment(server, "report", "iris", "999"), "HTTP 404", "no experiment 999")
    assert_one_line_refusal(experiment(server, "list", "nope"), "HTTP 404")
