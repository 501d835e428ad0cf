"""Every fenced block of README.md, run as printed: a new or changed block is picked up on the next run.

Each block is one test case, in README order. A block is dispatched on its heading and language; a block under a
heading (or in a language) no runner knows fails, rather than being skipped. Bash blocks run with
`bash -e -o pipefail` in a scratch copy of the repository root (see conftest.py), on the README's port 8000.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
import pytest
from tests.helpers import exited_unreaped
from tests.readme.blocks import ROOT, Block, commands, readme_blocks, sample_output, synopses
from tests.readme.bulk import run_bulk_block
from tests.readme.conftest import MakeServe, link_checkout, user_env
from tests.readme.ops import check_ops_block
from tests.readme.replicas import check_replicas_block, replicas_root
from tests.readme.tune import run_tune_block

from driftline.config import load_settings
from driftline.repository import load_model_config
from driftline.repository.model_config import ModelConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BLOCKS = readme_blocks()


def run_bash(block: Block, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """The block's text as one bash script; whatever it leaves running (a `&` job) is stopped afterwards.

    Its output goes to files, not pipes: a background job holds a pipe open after bash exits, and reading the pipe to
    its end would wait for that job (until the timeout) instead of for the block.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        timed_out = False
        try:
            timed_out = not exited_unreaped(proc, timeout)  # not reaped: the group id stays ours until wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if timed_out:
        pytest.fail(f"{block.label} ran past {timeout}s:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def succeeded(block: Block, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{block.label} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr


# --- the first block: make serve / make test ---


def run_make_block(block: Block, ctx: Context) -> None:
    for line in commands(block):
        command = shlex.split(line, comments=True)
        if command == ["make", "serve"]:
            ctx.serve.start(line)
            assert (ctx.checkout / "demo-models" / "iris" / "2" / "model.onnx").exists()
            index = httpx.post("http://127.0.0.1:8000/v2/repository/index", timeout=10).json()
            assert {m["name"] for m in index} >= {"iris"}
            assert all(m["state"] == "READY" for m in index), index
        elif command == ["make", "test"]:
            # `make test` runs this very suite, so it cannot run inside it; CI runs exactly it instead.
            ci = (ROOT / ".ci" / "run").read_text()
            assert [c for c in commands(Block("bash", "", ci, 0)) if not c.startswith(("set ", "cd "))] == ["make test"]
        else:
            pytest.fail(f"{block.label}: no test knows how to run {line!r}")


# --- A first request: curl and tritonclient against `make serve` ---


def _close(actual: object, expected: object, where: str = "") -> None:
    if isinstance(expected, float) or isinstance(actual, float):
        assert actual == pytest.approx(expected, abs=1e-4), where
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), (where, actual)
        assert actual.keys() == expected.keys(), (where, actual, expected)
        for k in expected:
            _close(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), (where, actual)
        assert len(actual) == len(expected), (where, actual, expected)
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _close(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, (where, actual, expected)


def run_first_request(block: Block, ctx: Context) -> None:
    ctx.serve.start()
    if block.lang == "bash":
        proc = run_bash(block, ctx.checkout, user_env(ctx.checkout, venv_on_path=True), timeout=60)
        succeeded(block, proc)
        # The answer, and the sample the README prints under the command, to the 4 decimals it shows.
        _close(json.loads(proc.stdout), json.loads(sample_output(block, "curl")))
        return
    script = ctx.checkout / "first_request.py"
    script.write_text(block.text)
    proc = subprocess.run(
        [str(ctx.checkout / ".venv" / "bin" / "python"), script.name],
        cwd=ctx.checkout,
        env=user_env(ctx.checkout, venv_on_path=True),
        capture_output=True,
        text=True,
        timeout=60,
    )
    succeeded(block, proc)
    label, batching, queue = proc.stdout.splitlines()
    assert label == "[0]"  # the first iris row is a setosa, as the curl answer says
    assert "max_queue_delay_microseconds" in ast.literal_eval(batching)
    assert set(ast.literal_eval(queue)) == {"count", "ns"}


# --- toml: a model's config.toml, and the server settings ---


def run_model_config(block: Block, ctx: Context) -> None:
    path = ctx.checkout / "readme-config" / f"line{block.line}" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(block.text)
    config = load_model_config(path)
    if block.heading == "The model repository":
        # "every key with its default": so it is, but for what the comments say is derived from the model.
        defaults = ModelConfig()
        differ = {
            f.name for f in msgspec.structs.fields(ModelConfig) if getattr(config, f.name) != getattr(defaults, f.name)
        }
        assert differ <= {"backend", "inputs", "outputs"}, differ


def run_server_settings(block: Block, ctx: Context) -> None:
    path = ctx.checkout / "readme-server.toml"
    path.write_text(block.text)
    settings = load_settings(path, environ={})
    # Every key the block names reached the settings (none ignored or misspelt into a default).
    flat = tomllib.loads(block.text)
    assert settings.repository == flat["repository"]
    assert settings.http.port == flat["http"]["port"] == 8000


def run_in_a_copy(block: Block, ctx: Context, suffix: str) -> tuple[Path, subprocess.CompletedProcess[str], str]:
    """Run a walkthrough "after make install (or make serve once)" in a copy of that root (the demo and the store),
    so what it changes stays out of the later blocks; it must succeed. Returns the root, the run and server.log."""
    ctx.serve.ran_once()
    root = link_checkout(ctx.checkout.with_name(ctx.checkout.name + suffix))
    shutil.copytree(ctx.checkout / "demo-models", root / "demo-models")
    shutil.copy2(ctx.checkout / "driftline.db", root / "driftline.db")
    proc = run_bash(block, root, user_env(root, venv_on_path=False), timeout=240)
    log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
    assert proc.returncode == 0, (
        f"{block.label} failed:\n{proc.stdout[-4000:]}\n{proc.stderr}\nserver.log:\n{log[-3000:]}"
    )
    return root, proc, log


# --- the walkthrough: publish -> shadow -> approve -> promote -> rollback ---


def run_walkthrough(block: Block, ctx: Context) -> None:
    # "after make install (or make serve once)": the demo and the store exist, and no server holds port 8000.
    # It runs in a copy of that root: the key it creates would otherwise close the drift routes to the README's
    # keyless curl in the later blocks (which a user reading a section on its own runs without the walkthrough).
    root, proc, _ = run_in_a_copy(block, ctx, "-walkthrough")
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    # What the block's comments say each step shows.
    statuses = re.findall(r"^iris\s+READY\s+\S+\s+(\S+)\s+(\S+)", out, re.MULTILINE)
    assert statuses[:2] == [("1,2", "champion=2"), ("1,2,3", "champion=2")], out
    assert '"agreement": 1.0' in out, out
    assert '"state": "promoted"' in out, out
    assert '"model_version":"3"' in out, out  # the promoted version answers before the rollback
    assert re.search(r"rollback\s+iris\s+3 -> 2\s.*p99 regression", out), out
    assert (root / "demo-models" / "iris" / "3" / "model.onnx").exists()


# --- the walkthrough: capture -> labels -> quality report -> retraining webhook ---


def run_quality_walkthrough(block: Block, ctx: Context) -> None:
    # It appends a rule to the demo's config.toml: run it in a copy of the root, as the other walkthrough.
    root, proc, log = run_in_a_copy(block, ctx, "-quality")
    assert "Traceback" not in proc.stderr + log
    out = proc.stdout
    # What the comments say: 200 labels stored, accuracy 0.75 over 200 labeled rows, one firing event.
    assert json.loads(out.splitlines()[0])["stored"] == 200, out
    assert re.search(r"200 of 200 captured rows labeled", out), out
    assert re.search(r"^\s*accuracy\s+0\.7500\s", out, re.MULTILINE), out
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    quality = [e for e in events if e["kind"] == "quality"]
    assert [(e["state"], e["rule"]["metric"], e["value"]) for e in quality] == [("firing", "accuracy", 0.75)], events
    assert "<html" in (root / "quality.html").read_text().lower()
    import polars as pl

    rows = pl.read_parquet(root / "retrain.parquet")
    # The rule's window: the last 100 labeled rows, every 4th of them labeled class 2.
    assert rows.height == quality[0]["window"]["labeled"] == 100
    assert sorted(rows["target"].value_counts().rows()) == [(0, 75), (2, 25)]


# --- the walkthrough: canary experiment -> KPIs -> report -> promotion on evidence ---


def run_experiment_walkthrough(block: Block, ctx: Context) -> None:
    # It creates a key and moves the champion: run it in a copy of the root, as the other walkthroughs.
    root, proc, log = run_in_a_copy(block, ctx, "-experiment")
    assert "Traceback" not in proc.stderr + log
    out = proc.stdout
    # What the comments say: approval refused before the evidence (naming the rule), on record; then the
    # conversion lift is BETTER, the report says ready, the promotion keeps approver and evidence.
    assert "refused: no evidence yet" in out, out
    assert "cannot be approved yet" in proc.stderr, proc.stderr
    assert "conversion: better than champion" in proc.stderr, proc.stderr
    users = json.loads(next(line for line in out.splitlines() if line.startswith('{"conversions"')))
    assert users["failed"] == 0, users
    assert 0.25 < users["users"]["1"] / 4000 < 0.35, users  # the canary's 30%
    conversion = out[out.index("conversion (primary") :]
    assert re.search(r"challenger - control: .*-> BETTER", conversion.splitlines()[4]), out
    assert "ready for promotion: yes" in out, out
    assert "promoted key:me True" in out, out
    assert re.search(r"^\d+\s+checkout-v1\s+stopped\s+canary\s", out, re.MULTILINE), out
    assert "<html" in (root / "experiment.html").read_text().lower()
    for action in ("experiment_started", "approve_refused", "approve", "promote", "experiment_stopped"):
        assert re.search(rf"\s{action}\s", out), (action, out)


# --- Drift ---


def run_drift_block(block: Block, ctx: Context) -> None:
    from tests.readme.bulk import write_iris_frame

    write_iris_frame(ctx.checkout / "reference.parquet", rows=2_000, seed=1)
    write_iris_frame(ctx.checkout / "today.parquet", rows=1_000, seed=2)  # the same distribution: no drift
    ctx.serve.start()
    infer = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
    for _ in range(20):  # a little traffic, so the live window holds rows
        assert httpx.post("http://127.0.0.1:8000/v2/models/iris/versions/2/infer", json=infer, timeout=10).is_success
    proc = run_bash(block, ctx.checkout, user_env(ctx.checkout, venv_on_path=True), timeout=120)
    succeeded(block, proc)
    # curl prints the report without a newline; `echo $?` follows it.
    report, end = json.JSONDecoder().raw_decode(proc.stdout)
    code = proc.stdout[end:].strip()
    assert "error" not in report, report
    assert "<html" in (ctx.checkout / "r.html").read_text().lower()
    assert "<html" in (ctx.checkout / "report.html").read_text().lower()
    assert code == "0", proc.stdout  # 0 ok: no drift between two samples of one distribution


# --- the plain blocks: the repository tree, and the command synopsis ---


def run_tree(block: Block, ctx: Context) -> None:
    ctx.serve.start()  # the demo repository the tree shows, built by `make serve`
    path: list[str] = []
    for raw in block.text.splitlines():
        entry = raw.split("#", 1)[0].rstrip()
        if not entry.strip():
            continue
        depth = (len(entry) - len(entry.lstrip())) // 2
        path = [*path[:depth], entry.strip().rstrip("/")]
        if path[:2] == ["demo-models", "iris_torch"] and not (ctx.checkout / "demo-models" / "iris_torch").exists():
            continue  # built only when torch is installed
        assert (ctx.checkout.joinpath(*path)).exists(), f"{block.label}: {'/'.join(path)} is not in the demo"


def run_synopsis(block: Block, ctx: Context) -> None:
    from driftline.cli.main import main

    for synopsis in synopses(block):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
            main([*synopsis.path, "--help"])
        assert exit_.value.code == 0, f"`driftline {' '.join(synopsis.path)} --help` failed"
        helped = out.getvalue()
        for flag, metavar in synopsis.flags.items():
            assert re.search(rf"{flag}\b", helped), (
                f"{synopsis.line}: `driftline {' '.join(synopsis.path)}` has no {flag}"
            )
            choices = re.search(rf"{flag} \{{([^}}]*)\}}", helped)
            if choices and re.fullmatch(r"[a-z]+(\|[a-z]+)+", metavar):
                assert set(metavar.split("|")) == set(choices.group(1).split(",")), (synopsis.line, flag)


# --- dispatch ---


class Context:
    def __init__(self, checkout: Path, serve: MakeServe) -> None:
        self.checkout = checkout
        self.serve = serve


def run_bulk(block: Block, ctx: Context) -> None:
    ctx.serve.ran_once()  # the demo repository, and the store its aliases are read from
    run_bulk_block(block, ctx.checkout)


def run_replicas(block: Block, ctx: Context) -> None:
    ctx.serve.ran_once()  # "after make serve once": the demo repository exists
    with replicas_root(ctx.checkout) as (root, env):
        check_replicas_block(block, root, run_bash(block, root, env, timeout=240))


def run_ops(block: Block, ctx: Context) -> None:
    ctx.serve.start()  # the demo's models, served: /v1/ops/slo answers for them
    proc = run_bash(block, ctx.checkout, user_env(ctx.checkout, venv_on_path=True), timeout=120)
    succeeded(block, proc)
    check_ops_block(block, ctx.checkout, proc)


def run_tune(block: Block, ctx: Context) -> None:
    ctx.serve.ran_once()  # the demo repository
    run_tune_block(block, ctx.checkout)


RUNNERS: dict[tuple[str, str], Callable[[Block, Context], None]] = {
    ("driftline", "bash"): run_make_block,
    ("A first request", "bash"): run_first_request,
    ("A first request", "python"): run_first_request,
    ("The model repository", ""): run_tree,
    ("The model repository", "toml"): run_model_config,
    ("Walkthrough: publish -> shadow -> approve -> promote -> rollback", "bash"): run_walkthrough,
    ("Walkthrough: capture -> labels -> quality report -> retraining webhook", "bash"): run_quality_walkthrough,
    ("Walkthrough: canary experiment -> KPIs -> report -> promotion on evidence", "bash"): run_experiment_walkthrough,
    ("Server settings", "toml"): run_server_settings,
    ("Drift", "bash"): run_drift_block,
    ("Drift", "toml"): run_model_config,
    ("Bulk scoring", "bash"): run_bulk,
    ("Tuning for a latency SLO", "bash"): run_tune,
    ("Operations: metrics, SLOs, logs and the dashboard", "toml"): run_model_config,
    ("Operations: metrics, SLOs, logs and the dashboard", "bash"): run_ops,
    ("Running several replicas, on Kubernetes, on KServe", "bash"): run_replicas,
    ("Command line", ""): run_synopsis,
}


@pytest.mark.parametrize("block", BLOCKS, ids=[f"L{b.line}-{b.lang or 'plain'}" for b in BLOCKS])
def test_readme_block(block: Block, checkout: Path, make_serve: MakeServe):
    runner = RUNNERS.get(block.key)
    if runner is None:
        pytest.fail(f"{block.label}: no runner for this block; add one to RUNNERS in {Path(__file__).name}")
    runner(block, Context(checkout, make_serve))
