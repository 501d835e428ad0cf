"""`driftline score --capture`: scored rows captured (arm bulk) through the server's capture writer, read back by a
real server on the same directory and store, labels joined by (capture_id, capture_row) and by entity; a job
submitted over HTTP captures too; refusals; a capture that fails leaves the job going; a resumed job captures
each row once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_test_repository, write_config, write_server_config
from tests.helpers import IRIS_QUALITY as IRIS

from driftline.capture.reader import CaptureReader
from driftline.cli.main import main
from driftline.config import CaptureSettings
from driftline.feedback.join import join
from driftline.feedback.report import quality_of
from driftline.jobs import JobCancelled, JobSpec, run_local
from driftline.jobs.capture import CaptureTarget
from driftline.store.captures import CaptureIndex
from driftline.store.db import open_database
from driftline.store.feedback import FeedbackStore

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROWS = 2500
COLUMNS = ["--columns", "x=f0,f1,f2,f3", "--passthrough", "id"]


@pytest.fixture
def site(tmp_path, iris_weights):
    """A repository (iris with [quality]), a server TOML capturing to ./captures, and an input with one null row."""
    root = build_test_repository(tmp_path / "models", iris_weights)
    write_config(root / "iris", IRIS)
    x = np.random.default_rng(0).normal(5, 1.5, (ROWS, 4)).astype(np.float32)
    data = pl.DataFrame({"id": np.arange(ROWS), "cust": [f"c{i % 50}" for i in range(ROWS)]})
    data = data.hstack([pl.Series(f"f{i}", x[:, i]) for i in range(4)])
    data.with_columns(pl.when(pl.col("id") == 7).then(None).otherwise(pl.col("f0")).alias("f0")).write_parquet(
        tmp_path / "in.parquet"
    )
    write_server_config(tmp_path / "server.toml", '[capture]\nenabled = true\ndirectory = "captures"\n')
    return tmp_path


def _env(site) -> dict[str, str]:
    return {
        **os.environ,
        "DRIFTLINE_CONFIG": str(site / "server.toml"),
        "DRIFTLINE_DATABASE": str(site / "driftline.db"),
    }


def _captured(site) -> pl.DataFrame:
    db = open_database(site / "driftline.db")
    try:
        return CaptureReader(site / "captures", CaptureIndex(db)).frame("iris")
    finally:
        db.close()


@pytest.mark.e2e
def test_captured_rows_are_the_scored_rows_a_server_lists_them_and_feedback_joins(site):
    command = [sys.executable, "-m", "driftline.cli", "score", "iris:1", "in.parquet", "--output", "out"]
    options = ["--repository", "models", "--columns", "x=f0,f1,f2,f3", "--passthrough", "id,cust", "--quiet"]
    options += ["--chunk-rows", "1000", "--capture", "--entity-column", "cust"]
    done = subprocess.run([*command, *options], cwd=site, env=_env(site), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["rejected"]) == (ROWS - 1, 1)
    capture = summary["capture"]
    assert (capture["sampled"], capture["captured"], capture["dropped"], capture["reason"]) == (
        ROWS - 1,
        ROWS - 1,
        0,
        None,
    )

    out = pl.read_parquet(site / "out" / "part-*.parquet")
    source = pl.read_parquet(site / "in.parquet")
    server = start_server(site / "models", site, {"DRIFTLINE_CONFIG": str(site / "server.toml")})
    try:
        r = httpx.get(f"{server.url}/v1/models/iris/captures?format=jsonl", headers=HEADERS, timeout=30)
        assert r.status_code == 200, r.text
        listed = pl.DataFrame([json.loads(line) for line in r.text.splitlines()])
        assert listed.height == ROWS - 1
        assert set(listed["arm"]) == {"bulk"}
        assert set(listed["version"]) == {1}
        # Each output row names its captured row; the captured inputs, outputs and entity are that row's.
        both = out.join(listed, left_on=["capture_id", "capture_row"], right_on=["request_id", "row"], how="inner")
        assert both.height == ROWS - 1
        assert (both["label"] == both["out.label"]).all()
        assert (both["cust"] == both["entity"]).all()
        features = both.join(source, on="id").select(pl.concat_list("f0", "f1", "f2", "f3").alias("x"), "in.x")
        assert np.allclose(np.array(features["x"].to_list()), np.array(features["in.x"].to_list()))
        # The request id is the job's id and the input row index of the batch's first row (one batch per run of
        # one entity here: cust changes every row).
        first = out.filter(pl.col("id") == 1001)
        assert first["capture_id"].item().endswith("-1001")
        assert first["capture_row"].item() == 0

        labeled = out.filter(pl.col("cust") != "c3").head(300)
        body = [
            {"id": k, "row": r, "target": int(t)}
            for k, r, t in labeled.select("capture_id", "capture_row", "label").rows()
        ]
        body.append({"entity": "c3", "target": 0})  # every row of c3: 50 of them
        r = httpx.post(f"{server.url}/v1/models/iris/feedback", json={"feedback": body}, headers=HEADERS, timeout=30)
        assert (r.status_code, r.json()) == (200, {"stored": 301, "replaced": 0, "unmatched": 0}), r.text

        r = httpx.post(
            f"{server.url}/v1/jobs",
            json={
                "model": "iris:1",
                "inputs": ["in.parquet"],
                "output": "http-out",
                "columns": {"x": ["f0", "f1", "f2", "f3"]},
                "capture": True,
            },
            headers=HEADERS,
            timeout=30,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while (job := httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=HEADERS, timeout=5).json())["state"] in (
            "queued",
            "running",
        ) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job["state"] == "succeeded", job
        refused = httpx.post(
            f"{server.url}/v1/jobs",
            json={"model": "iris:1", "inputs": ["in.parquet"], "output": "o2", "entity_column": "cust"},
            headers=HEADERS,
            timeout=30,
        )
        assert refused.status_code == 400
        assert "entity_column" in refused.json()["error"]
    finally:
        server.stop()

    captured = _captured(site)
    db = open_database(site / "driftline.db")
    try:
        labels = FeedbackStore(db).labels("iris")
    finally:
        db.close()
    by_job = captured.filter(pl.col("request_id").str.starts_with(f"{job_id}-"))
    assert by_job.height == ROWS - 1  # the HTTP job's rows, under its id
    joined = join(captured.filter(~pl.col("request_id").str.starts_with(f"{job_id}-")), labels)
    assert (joined.labeled, joined.unmatched) == (350, 0)
    report = quality_of(joined, "classification", "label", "probabilities", [0, 1, 2])
    assert [(v.version, v.captured, v.labeled) for v in report.versions] == [(1, ROWS - 1, 350)]
    assert report.versions[0].overall is not None


def _score(site, capsys, *extra: str, data: str = "in.parquet") -> tuple[int, str, str]:
    args = ["score", "iris:1", str(site / data), "--output", str(site / "out"), "--quiet"]
    code = main([*args, "--repository", str(site / "models"), *COLUMNS, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("extra", "config", "words"),
    [
        (["--entity-column", "cust"], "", ["--entity-column", "--capture"]),
        (["--capture", "--entity-column", "nope"], "", ["--entity-column 'nope'", "in.parquet"]),
        (["--capture", "--chunk-rows", "5000"], "queue_rows = 1000\nsegment_rows = 500\n", ["--chunk-rows", "1000"]),
        (["--capture", "--engine", "ray"], "", ["--capture", "local engine"]),
        (["--capture", "--passthrough", "capture_id"], "", ["capture_id"]),
        (["--capture"], "MODEL_OFF", ["turns capture off"]),
    ],
)
def test_refusals_are_one_line_and_nothing_is_scored(site, capsys, monkeypatch, extra, config, words):
    if config == "MODEL_OFF":
        write_config(site / "models" / "iris", IRIS + "[capture]\nenabled = false\n")
        config = ""
    (site / "job.toml").write_text(f'[capture]\ndirectory = "{site / "captures"}"\n{config}')
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(site / "job.toml"))
    monkeypatch.setenv("DRIFTLINE_DATABASE", str(site / "driftline.db"))
    # An input with a column named like the key columns --capture adds (for the clash).
    pl.DataFrame({"capture_id": ["a"], **{f"f{i}": [1.0] for i in range(4)}}).write_parquet(site / "keyed.parquet")
    code, out, err = _score(site, capsys, *extra, data="keyed.parquet" if "capture_id" in extra else "in.parquet")
    assert code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("driftline: error: ")
    for word in words:
        assert word in err
    assert not (site / "captures").exists()
    assert not (site / "out").exists()


def test_a_capture_that_cannot_write_drops_and_says_why_and_the_job_goes_on(site, capsys, monkeypatch):
    (site / "blocker").write_text("a file where the capture directory would be")
    (site / "job.toml").write_text(f'[capture]\ndirectory = "{site / "blocker" / "captures"}"\n')
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(site / "job.toml"))
    monkeypatch.setenv("DRIFTLINE_DATABASE", str(site / "driftline.db"))
    code, out, err = _score(site, capsys, "--capture", "--chunk-rows", "500")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rows"] == ROWS - 1
    assert len(pl.read_parquet(site / "out" / "part-*.parquet")) == ROWS - 1
    capture = summary["capture"]
    assert (capture["sampled"], capture["captured"], capture["dropped"]) == (ROWS - 1, 0, ROWS - 1)
    assert "capture stopped" in capture["reason"]
    assert "blocker" in capture["reason"]


def test_a_sample_rate_keeps_its_share_and_only_sampled_rows_carry_a_key(site, capsys, monkeypatch):
    write_config(site / "models" / "iris", IRIS + '[capture]\nsample_rate = 0.3\noutputs = ["label"]\n')
    (site / "job.toml").write_text(f'[capture]\ndirectory = "{site / "captures"}"\n')
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(site / "job.toml"))
    monkeypatch.setenv("DRIFTLINE_DATABASE", str(site / "driftline.db"))
    code, out, err = _score(site, capsys, "--capture", "--chunk-rows", "700")
    assert code == 0, err
    keys = pl.read_parquet(site / "out" / "part-*.parquet").filter(pl.col("capture_id").is_not_null())
    assert json.loads(out)["capture"]["captured"] == keys.height
    assert 0.2 < keys.height / (ROWS - 1) < 0.4
    captured = _captured(site)
    assert "out.probabilities" not in captured.columns
    assert "out.label" in captured.columns
    assert (
        captured.select("request_id", "row").sort(pl.all()).rows()
        == keys.select("capture_id", "capture_row").sort(pl.all()).rows()
    )


def test_a_cancelled_job_resumed_captures_each_row_once(site):
    db = open_database(site / "driftline.db")
    target = CaptureTarget(CaptureSettings(directory=str(site / "captures")), CaptureIndex(db))
    spec = JobSpec(
        model="iris",
        version="1",
        inputs=[str(site / "in.parquet")],
        output=str(site / "out"),
        repository=str(site / "models"),
        chunk_rows=400,
        columns={"x": ["f0", "f1", "f2", "f3"]},
        capture=True,
    )
    cancel = threading.Event()
    try:
        with pytest.raises(JobCancelled):
            run_local(spec, capture=target, cancel=cancel, progress=lambda done, total: cancel.set(), job_id="first")
        summary = run_local(spec, resume=True, capture=target, job_id="second")
    finally:
        db.close()
    assert summary.capture is not None
    assert summary.capture.captured < ROWS - 1
    captured = _captured(site)
    assert captured.height == ROWS - 1
    assert captured.select("request_id", "row").is_unique().all()
    ids = set(pl.read_parquet(site / "out" / "part-*.parquet")["capture_id"])
    assert ids == set(captured["request_id"])
    assert any(i.startswith("first-") for i in ids)


def test_each_run_of_one_entity_is_one_batch_keyed_by_its_first_input_row(site, capsys, monkeypatch):
    source = pl.read_parquet(site / "in.parquet").sort("cust", "id")  # 50 rows per entity, together
    source.write_parquet(site / "sorted.parquet")
    (site / "job.toml").write_text(f'[capture]\ndirectory = "{site / "captures"}"\n')
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(site / "job.toml"))
    monkeypatch.setenv("DRIFTLINE_DATABASE", str(site / "driftline.db"))
    extra = ("--capture", "--entity-column", "cust", "--chunk-rows", "120", "--passthrough", "id,cust")
    code, out, err = _score(site, capsys, *extra, data="sorted.parquet")
    assert code == 0, err
    assert json.loads(out)["capture"]["captured"] == ROWS - 1
    scored = pl.read_parquet(site / "out" / "part-*.parquet")
    position = {i: n for n, i in enumerate(source["id"])}  # input row index of each id
    for (key,), rows in scored.group_by("capture_id"):
        assert rows["cust"].n_unique() == 1  # one entity per batch
        first = rows.sort("capture_row").row(0, named=True)
        assert key.endswith(f"-{position[first['id']]}")  # named by its first row's input row index
        assert sorted(rows["capture_row"]) == list(range(rows.height))
        # A batch never spans two chunks.
        assert len({position[i] // 120 for i in rows["id"]}) == 1
    captured = _captured(site)
    both = scored.join(captured, left_on=["capture_id", "capture_row"], right_on=["request_id", "row"])
    assert both.height == ROWS - 1
    assert (both["cust"] == both["entity"]).all()


def test_bulk_segments_carry_the_versions_lineage(site, capsys, monkeypatch):
    """A bulk job stamps its version's lineage into each segment it writes, as the server does for served rows."""
    import pyarrow.parquet as pq

    (site / "models" / "iris" / "1" / "lineage.json").write_text('{"run_id": "run-42", "params": {"lr": "0.1"}}')
    monkeypatch.chdir(site)
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(site / "server.toml"))
    monkeypatch.setenv("DRIFTLINE_DATABASE", str(site / "driftline.db"))
    code, _, err = _score(site, capsys, "--capture")
    assert code == 0, err
    segments = sorted((site / "captures").rglob("*.parquet"))
    assert segments
    for segment in segments:
        stamped = json.loads(pq.read_schema(segment).metadata[b"driftline.lineage"])
        assert (stamped["run_id"], stamped["params"], stamped["source_uri"]) == (
            "run-42",
            {"lr": "0.1"},
            str(site / "models" / "iris" / "1"),
        )
