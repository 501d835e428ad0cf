"""Bulk scoring with the local engine: equal outputs, bad inputs up front, nulls, resume after kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl
import pytest

from driftline.errors import BadRequest
from driftline.jobs import JobSpec, run_local


def frame(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(5, 1.5, (rows, 4)).astype(np.float32)
    return pl.DataFrame({"id": np.arange(rows) + seed * 1_000_000, **{f"f{i}": x[:, i] for i in range(4)}})


def direct(repo: Path, x: np.ndarray, version: int = 2) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(repo / "iris" / str(version) / "model.onnx"))
    return dict(zip(["probabilities", "label"], session.run(["probabilities", "label"], {"x": x}), strict=True))


def spec(repo: Path, inputs: list[Path], out: Path, **kw) -> JobSpec:
    return JobSpec(
        model="iris",
        inputs=[str(p) for p in inputs],
        output=str(out),
        repository=str(repo),
        passthrough=["id"],
        chunk_rows=kw.pop("chunk_rows", 700),
        batch_size=kw.pop("batch_size", 128),
        **kw,
    )


def read_output(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "part-*.parquet").sort("id")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_scores_every_row_once_and_equal_to_onnxruntime(repo: Path, tmp_path: Path, fmt: str):
    data = [frame(1500, 0), frame(333, 1)]
    paths = []
    for i, df in enumerate(data):
        paths.append(tmp_path / f"in{i}.{fmt}")
        getattr(df, f"write_{fmt}")(paths[-1])
    summary = run_local(spec(repo, paths, tmp_path / "out", instances=2))
    assert (summary.rows, summary.rejected, summary.version) == (1833, 0, 2)
    got = read_output(tmp_path / "out")
    full = pl.concat(data)
    assert got["id"].to_list() == sorted(full["id"].to_list())
    x = full.sort("id").select([f"f{i}" for i in range(4)]).to_numpy().astype(np.float32)
    expected = direct(repo, x)
    np.testing.assert_array_equal(got["label"].to_numpy(), expected["label"])
    np.testing.assert_allclose(np.stack(got["probabilities"].to_numpy()), expected["probabilities"], rtol=1e-6)
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["rows"] == 1833
    assert len(manifest["parts"]) == 3 + 1


def test_explicit_columns_and_version(repo: Path, tmp_path: Path):
    df = frame(50).rename({"f0": "a", "f1": "b", "f2": "c", "f3": "d"}).with_columns(extra=pl.lit(1.0))
    df.write_parquet(tmp_path / "in.parquet")
    run_local(spec(repo, [tmp_path / "in.parquet"], tmp_path / "out", version="1", columns={"x": ["a", "b", "c", "d"]}))
    got = read_output(tmp_path / "out")
    expected = direct(repo, df.select(["a", "b", "c", "d"]).to_numpy().astype(np.float32), version=1)
    np.testing.assert_array_equal(got["label"].to_numpy(), expected["label"])


def test_every_column_problem_is_reported_before_scoring(repo: Path, tmp_path: Path):
    frame(10).drop("f3").write_parquet(tmp_path / "a.parquet")
    frame(10).with_columns(pl.col("f1").cast(pl.String)).write_parquet(tmp_path / "b.parquet")
    out = tmp_path / "out"
    with pytest.raises(BadRequest) as info:
        run_local(
            spec(repo, [tmp_path / "a.parquet", tmp_path / "b.parquet"], out, columns={"x": ["f0", "f1", "f2", "f3"]})
        )
    message = str(info.value)
    assert "a.parquet: missing column 'f3'" in message
    assert "b.parquet: column 'f1' has type String" in message
    assert not out.exists()


def test_missing_and_corrupt_files_are_named(repo: Path, tmp_path: Path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(BadRequest) as info:
        run_local(spec(repo, [tmp_path / "bad.parquet", tmp_path / "nope.csv"], tmp_path / "out"))
    assert "bad.parquet: cannot be read as parquet" in str(info.value)
    assert "nope.csv: no such file" in str(info.value)


def test_empty_input_gives_empty_output_with_schema(repo: Path, tmp_path: Path):
    frame(0).write_parquet(tmp_path / "empty.parquet")
    summary = run_local(spec(repo, [tmp_path / "empty.parquet"], tmp_path / "out"))
    assert summary.rows == 0
    out = pl.read_parquet(tmp_path / "out" / "part-00000-000000.parquet")
    assert out.schema == pl.Schema({"id": pl.Int64, "probabilities": pl.Array(pl.Float32, 3), "label": pl.Int64})


@pytest.mark.parametrize("policy", ["reject", "file", "fail"])
def test_nulls(repo: Path, tmp_path: Path, policy: str):
    df = frame(100).with_columns(pl.when(pl.col("id") % 10 == 0).then(None).otherwise(pl.col("f2")).alias("f2"))
    df.write_parquet(tmp_path / "in.parquet")
    job = spec(repo, [tmp_path / "in.parquet"], tmp_path / "out", on_null=policy)
    if policy == "fail":
        with pytest.raises(BadRequest, match="10 row"):
            run_local(job)
        assert not (tmp_path / "out").exists()
        return
    summary = run_local(job)
    assert (summary.rows, summary.rejected) == (90, 10)
    rejects = list((tmp_path / "out" / "rejects").glob("*.parquet"))
    if policy == "file":
        assert pl.read_parquet(rejects[0])["id"].to_list() == list(range(0, 100, 10))
    else:
        assert rejects == []


def test_resume_guards(repo: Path, tmp_path: Path):
    frame(100).write_parquet(tmp_path / "in.parquet")
    job = spec(repo, [tmp_path / "in.parquet"], tmp_path / "out")
    run_local(job)
    with pytest.raises(BadRequest, match="--resume"):
        run_local(job)
    assert run_local(job, resume=True).rows == 100  # nothing left to do, same answer
    changed = spec(repo, [tmp_path / "in.parquet"], tmp_path / "out", batch_size=7)
    with pytest.raises(BadRequest, match="changed"):
        run_local(changed, resume=True)


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_scores_each_row_exactly_once(repo: Path, tmp_path: Path):
    data = frame(60_000, 3)
    data.write_parquet(tmp_path / "in.parquet")
    data.head(20_000).write_csv(tmp_path / "in.csv")
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "driftline.cli", "score", "iris", str(tmp_path / "in.parquet"), str(tmp_path / "in.csv"),
        "--repository", str(repo), "--output", str(out), "--passthrough", "id", "--chunk-rows", "1000",
        "--batch-size", "256", "--quiet",
    ]  # fmt: skip
    rng = random.Random(7)
    kills = 0
    for attempt in range(5):
        proc = subprocess.Popen(
            [*cmd, *(["--resume"] if attempt else [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # Kill at a random moment once the job is under way: after a random number of further parts, plus jitter.
        target = len(list(out.glob("part-*.parquet"))) + rng.randint(1, 15)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and len(list(out.glob("part-*.parquet"))) < target:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    final = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert kills >= 3
    summary = json.loads(final.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 80_000
    ids = pl.read_parquet(out / "part-*.parquet")["id"]
    assert len(ids) == 80_000
    expected = data["id"].to_list() + data.head(20_000)["id"].to_list()
    assert sorted(ids.to_list()) == sorted(expected)
    assert not list(out.glob("*.tmp"))


def test_job_ends_with_a_drift_summary_when_the_model_has_reference_data(repo: Path, tmp_path: Path):
    from driftline.repository.demo import IRIS_FEATURES, iris_like_data

    x_ref, _ = iris_like_data(3000, seed=21)
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        repo / "iris" / "reference.parquet"
    )
    x, _ = iris_like_data(2000, seed=22)
    calm = pl.DataFrame({"id": np.arange(2000), **{f"f{i}": x[:, i] for i in range(4)}})
    calm.write_parquet(tmp_path / "calm.parquet")
    calm.with_columns(pl.col("f2") + 2.5).write_parquet(tmp_path / "shifted.parquet")
    ok = run_local(spec(repo, [tmp_path / "calm.parquet"], tmp_path / "out1"))
    assert ok.drift is not None
    assert (ok.drift.verdict, ok.drift.rows) == ("ok", 2000)
    moved = run_local(spec(repo, [tmp_path / "shifted.parquet"], tmp_path / "out2"))
    assert moved.drift is not None
    assert "petal_length" in moved.drift.drifted
    manifest = json.loads((tmp_path / "out2" / "_manifest.json").read_text())
    assert manifest["drift"]["drifted"] == moved.drift.drifted
    assert run_local(spec(repo, [tmp_path / "calm.parquet"], tmp_path / "out3", version="1")).drift is not None


def test_a_drift_policy_whose_threshold_fits_no_statistic_is_a_config_error(repo: Path, tmp_path: Path):
    from driftline.errors import ConfigError
    from driftline.repository.demo import IRIS_FEATURES, iris_like_data

    x_ref, _ = iris_like_data(500, seed=21)
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        repo / "iris" / "reference.parquet"
    )
    config = repo / "iris" / "config.toml"
    config.write_text(config.read_text() + "[drift.policy]\nthreshold = 5.0\n")
    frame(50).write_parquet(tmp_path / "in.parquet")
    # 500 reference rows: KS tests, whose p-value threshold must lie in (0, 1).
    with pytest.raises(ConfigError, match=r"config.toml: \[drift.policy\] threshold 5 for feature 'sepal_length'"):
        run_local(spec(repo, [tmp_path / "in.parquet"], tmp_path / "out"))


def test_a_cancelled_job_stops_its_threads_at_once(repo: Path, tmp_path: Path):
    """Cancelling after the first part ends every reader and scorer thread (a scorer once waited forever on an
    empty queue, and the job waited out a 30 s join per thread)."""
    import threading

    from driftline.jobs.local import JobCancelled

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"in{i}.parquet")
        frame(3000, i).write_parquet(paths[-1])
    cancel = threading.Event()
    with pytest.raises(JobCancelled):
        run_local(
            spec(repo, paths, tmp_path / "out", chunk_rows=1000, instances=2),
            cancel=cancel,
            progress=lambda done, total: cancel.set(),
        )
    alive = [t.name for t in threading.enumerate() if t.name.startswith("driftline-job")]
    assert alive == []
