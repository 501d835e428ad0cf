"""`driftline evaluate` as a user types it: a labeled file scored by a real ONNX model, its report equal to
scikit-learn's on the same rows (predictions taken from onnxruntime directly), stored with the version in the
store, audited; each user error one line and exit 2, with nothing stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl
import pytest
from sklearn import metrics
from tests.helpers import assert_one_line_refusal, build_evaluation_repository

from driftline.repository.demo import iris_like_data
from driftline.store.audit import AuditLog
from driftline.store.db import open_database
from driftline.store.deployments import DeploymentStore
from driftline.store.evaluations import EvaluationStore

TOL = 1e-12
ROWS = 400


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOL * max(1.0, abs(b))


@pytest.fixture
def models(tmp_path: Path, iris_weights) -> Path:
    return build_evaluation_repository(tmp_path / "models", iris_weights)


@pytest.fixture
def data(tmp_path: Path) -> pl.DataFrame:
    x, y = iris_like_data(ROWS, seed=11)
    return pl.DataFrame({f"f{i}": x[:, i] for i in range(4)}).with_columns(pl.Series("y", y))


def evaluate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRIFTLINE_DATABASE": str(tmp_path / "driftline.db")}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "evaluate", *args, "--repository", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def onnx_outputs(models: Path, name: str, version: int, frame: pl.DataFrame) -> list[np.ndarray]:
    session = ort.InferenceSession(str(models / name / str(version) / "model.onnx"))
    x = frame.select(f"f{i}" for i in range(4)).to_numpy().astype(np.float32)
    return session.run(None, {"x": x})


def stored(tmp_path: Path, name: str, version: int):
    db = open_database(tmp_path / "driftline.db")
    try:
        store = EvaluationStore(db)
        return store.latest(name, version), store.reference(name, version), AuditLog(db).events(action="evaluate")
    finally:
        db.close()


def test_a_classifier_report_equals_sklearn_and_is_stored_with_the_version(tmp_path, models, data):
    data.write_parquet(tmp_path / "labeled.parquet")
    out = evaluate(tmp_path, "iris:1", "labeled.parquet", "--target", "y", "--json", "--out", "report.json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert json.loads((tmp_path / "report.json").read_text()) == result
    proba, label = onnx_outputs(models, "iris", 1, data)
    y = data["y"].to_numpy()
    report = result["report"]
    assert (result["model"], result["version"], result["rows"], result["target"]) == ("iris", 1, ROWS, "y")
    assert report["n"] == ROWS
    assert close(report["accuracy"]["value"], metrics.accuracy_score(y, label))
    p, r, f, support = metrics.precision_recall_fscore_support(y, label, labels=[0, 1, 2], zero_division=0)
    for c, cls in enumerate(report["classes"]):
        assert cls["label"] == c
        assert cls["support"] == support[c]
        assert close(cls["precision"]["value"], p[c])
        assert close(cls["recall"]["value"], r[c])
        assert close(cls["f1"]["value"], f[c])
    assert close(report["f1_macro"]["value"], f.mean())
    assert close(report["precision_macro"]["value"], p.mean())
    with warnings.catch_warnings():
        # float32 softmax rows sum to 1 within ~1e-7: sklearn warns of it, and uses them as they are.
        warnings.filterwarnings("ignore", "The y_prob values do not sum to one", UserWarning)
        expected = metrics.log_loss(y, proba.astype(np.float64), labels=[0, 1, 2])
    assert close(report["log_loss"]["value"], expected)
    assert report["confusion"]["counts"] == metrics.confusion_matrix(y, label, labels=[0, 1, 2]).tolist()
    assert report["roc_auc"] is None  # three classes: no binary AUC
    assert result["metrics"] == {"accuracy": report["accuracy"]["value"], "f1_macro": report["f1_macro"]["value"]}

    evaluation, reference, events = stored(tmp_path, "iris", 1)
    assert evaluation is not None
    assert evaluation.report == report
    assert evaluation.id == result["id"]
    assert evaluation.dataset == str(tmp_path / "labeled.parquet")
    assert evaluation.sha256 == result["sha256"] != stored_sha(tmp_path, models, "iris", 2)
    assert reference is None  # not a binary classifier
    assert evaluation.reference_rows == 0
    assert [(e.model, e.version_after, e.sha256, e.actor[:4]) for e in events] == [
        ("iris", "1", result["sha256"], "cli:")
    ]


def stored_sha(tmp_path: Path, models: Path, name: str, version: int) -> str:
    from driftline.security.digests import file_sha256

    return file_sha256(models / name / str(version) / "model.onnx")


def test_a_binary_classifier_from_csv_stores_its_reference_pairs(tmp_path, models, data):
    binary = data.with_columns((pl.col("y") == 1).cast(pl.Int64))
    binary.write_csv(tmp_path / "labeled.csv")
    out = evaluate(tmp_path, "binary", "labeled.csv", "--target", "y", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["report"]
    # The CSV's float text reads back as float64; the model casts it to float32, as onnxruntime here.
    proba, label = onnx_outputs(models, "binary", 1, pl.read_csv(tmp_path / "labeled.csv"))
    y = binary["y"].to_numpy()
    assert close(report["accuracy"]["value"], metrics.accuracy_score(y, label))
    assert close(report["roc_auc"]["value"], metrics.roc_auc_score(y, proba[:, 1].astype(np.float64)))
    assert close(report["f1_macro"]["value"], metrics.f1_score(y, label, average="macro"))
    assert report["positive"] == 1
    evaluation, reference, _ = stored(tmp_path, "binary", 1)
    assert evaluation is not None
    assert set(evaluation.metrics) == {"accuracy", "f1_macro", "roc_auc"}
    assert reference is not None
    labels, scores = reference
    assert labels.tolist() == y.tolist()
    assert np.array_equal(scores, proba[:, 1].astype(np.float64))
    assert evaluation.reference_rows == ROWS


def test_a_regressor_report_equals_sklearn(tmp_path, models, data):
    x = data.select(f"f{i}" for i in range(4)).to_numpy()
    # Named like the model's output: the target is read from the file, the prediction from the model.
    data.with_columns(pl.Series("y", x.sum(axis=1) * 0.1 + 0.5)).write_parquet(tmp_path / "labeled.parquet")
    out = evaluate(tmp_path, "reg", "labeled.parquet", "--target", "y", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    (y_pred,) = onnx_outputs(models, "reg", 1, data)
    y_pred = y_pred[:, 0].astype(np.float64)
    y = x.sum(axis=1) * 0.1 + 0.5
    report = result["report"]
    assert close(report["mae"]["value"], metrics.mean_absolute_error(y, y_pred))
    assert close(report["rmse"]["value"], metrics.root_mean_squared_error(y, y_pred))
    assert close(report["mape"]["value"], metrics.mean_absolute_percentage_error(y, y_pred))
    assert close(report["r2"]["value"], metrics.r2_score(y, y_pred))
    assert set(result["metrics"]) == {"mae", "rmse", "r2"}
    evaluation, reference, _ = stored(tmp_path, "reg", 1)
    assert evaluation is not None
    assert evaluation.report == report
    assert reference is None


def test_an_alias_resolves_from_the_store_and_the_table_is_for_a_person(tmp_path, models, data):
    db = open_database(tmp_path / "driftline.db")
    DeploymentStore(db).move_alias("iris", "champion", 2, None)
    db.close()
    data.write_parquet(tmp_path / "labeled.parquet")
    out = evaluate(tmp_path, "iris@champion", "labeled.parquet", "--target", "y")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no progress bar when stderr is not a terminal
    lines = out.stdout.splitlines()
    assert lines[0].startswith("model iris version 2 (sha256 ")
    assert any(line.startswith("accuracy ") for line in lines)
    assert any(line.startswith("log_loss ") for line in lines)
    assert lines[-1].startswith("stored as evaluation 1 in ")
    evaluation, _, _ = stored(tmp_path, "iris", 2)
    assert evaluation is not None
    assert stored(tmp_path, "iris", 1)[0] is None


def _write(tmp_path: Path, data: pl.DataFrame) -> None:
    data.write_parquet(tmp_path / "labeled.parquet")
    data.with_columns(pl.col("f0").alias("y")).write_parquet(tmp_path / "float_target.parquet")
    data.with_columns(pl.col("y").cast(pl.String)).write_parquet(tmp_path / "text_target.parquet")
    with_nulls = data.with_columns(pl.when(pl.col("f0") > 6).then(None).otherwise(pl.col("y")).alias("y"))
    with_nulls.write_parquet(tmp_path / "null_target.parquet")
    missing = data.with_columns(pl.when(pl.col("f1") > 3.5).then(None).otherwise(pl.col("f0")).alias("f0"))
    missing.write_parquet(tmp_path / "null_input.parquet")
    data.head(0).write_parquet(tmp_path / "empty.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet\n")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["iris", "nope.parquet", "--target", "y"], ["nope.parquet", "no such file"]),
        (["iris", "junk.parquet", "--target", "y"], ["junk.parquet", "cannot be read"]),
        (["iris", "empty.parquet", "--target", "y"], ["empty.parquet", "no rows"]),
        (["iris", "labeled.parquet", "--target", "label_"], ["no column 'label_'", "'f0'"]),
        (["iris", "float_target.parquet", "--target", "y"], ["'y'", "Float32", "classification label"]),
        (["reg", "text_target.parquet", "--target", "y"], ["'y'", "String", "regression target"]),
        (["iris", "null_target.parquet", "--target", "y"], ["'y'", "empty on"]),
        (["iris", "null_input.parquet", "--target", "y"], ["nulls in model columns"]),
        (["mlp", "labeled.parquet", "--target", "y"], ["'mlp'", "[quality]"]),
        (["nosuch", "labeled.parquet", "--target", "y"], ["'nosuch'", "not in the repository"]),
        (["iris:9", "labeled.parquet", "--target", "y"], ["no version 9"]),
        (["iris@gold", "labeled.parquet", "--target", "y"], ["alias 'gold'"]),
        (["iris", "labeled.parquet", "--target", "y", "--max-rows", "100"], [f"{ROWS} rows", "--max-rows 100"]),
        (["iris", "labeled.parquet", "--target", "y", "--columns", "z=f0"], ["--columns", "'z'"]),
        (["iris", "labeled.parquet", "--target", "y", "--batch-size", "0"], ["batch_size"]),
        (["iris", "labeled.parquet"], ["--target"]),
        (["iris", "labeled.parquet", "--target", "y", "--out", "nowhere/r.json"], ["--out", "no folder"]),
    ],
)
def test_each_user_error_is_one_line_exit_2_and_stores_nothing(tmp_path, models, data, args, words):
    _write(tmp_path, data)
    assert_one_line_refusal(evaluate(tmp_path, *args), *words)
    if (tmp_path / "driftline.db").exists():
        db = open_database(tmp_path / "driftline.db")
        try:
            assert db.query("SELECT count(*) FROM evaluations")[0][0] == 0
        finally:
            db.close()


def test_at_a_terminal_progress_goes_to_stderr_and_the_table_to_stdout(tmp_path, models, data):
    from tests.readme.terminal import ESC, run_in_terminal

    data.write_parquet(tmp_path / "labeled.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLINE_", "FORCE_COLOR", "NO_COLOR"))}
    argv = [sys.executable, "-m", "driftline.cli", "evaluate", "iris:1", "labeled.parquet", "--target", "y"]
    run = run_in_terminal([*argv, "--repository", "models"], cwd=tmp_path, env=env, timeout=120)
    assert not run.timed_out
    assert run.returncode == 0, run.stderr
    assert "evaluating iris:1" in run.stderr
    assert ESC in run.stderr  # drawn and erased in place
    assert run.stdout_lines[0].startswith("model iris version 1 ")
    assert ESC not in run.stdout
    assert stored(tmp_path, "iris", 1)[0] is not None  # the store of the folder it ran in (no settings given)


def test_columns_named_by_hand_and_a_bool_target_give_the_int_target_report(tmp_path, models, data):
    binary = data.with_columns((pl.col("y") == 1).cast(pl.Int64))
    binary.write_parquet(tmp_path / "ints.parquet")
    renamed = binary.rename({f"f{i}": c for i, c in enumerate("abcd")}).with_columns(
        (pl.col("y") == 1).alias("is_one"), pl.lit("x").alias("note"), pl.col("a").alias("extra")
    )
    renamed.drop("y").write_parquet(tmp_path / "bools.parquet")
    first = evaluate(tmp_path, "binary", "ints.parquet", "--target", "y", "--json")
    assert first.returncode == 0, first.stderr
    args = ["bools.parquet", "--target", "is_one", "--columns", "x=a,b,c,d", "--json"]
    second = evaluate(tmp_path, "binary", *args)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["report"] == json.loads(first.stdout)["report"]
