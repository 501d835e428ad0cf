"""A version's lineage from its folder: ``lineage.json`` read and checked (a bad one fails that version's load,
naming the file and the field), the artifact's digest and source added, placed versions named by their registry
reference, and the lineage stamped into the version's capture segments and kept by a Parquet export."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.helpers import build_test_repository

from driftline.capture.reader import CaptureReader
from driftline.capture.segments import LINEAGE_KEY
from driftline.capture.service import CaptureService
from driftline.config import CaptureSettings
from driftline.errors import ConfigError
from driftline.repository import Repository
from driftline.repository.lineage import (
    LINEAGE_FILE,
    MAX_LINEAGE_BYTES,
    Dataset,
    Lineage,
    RunRecord,
    lineage_of,
    read_run_record,
)
from driftline.repository.placement import Placement
from driftline.serving.table import ModelTable
from driftline.store.captures import CaptureIndex
from driftline.store.db import open_database

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
RECORD = {
    "run_id": "run-7",
    "params": {"lr": "0.1", "depth": "4"},
    "metrics": {"val_accuracy": 0.93, "epochs": 12},
    "datasets": [{"name": "iris-train", "digest": "d1g3st", "source": "s3://data/iris.parquet"}],
    "notes": "trained on the March refresh",
}


def write_lineage(folder: Path, body: object) -> Path:
    path = folder / LINEAGE_FILE
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def test_a_lineage_json_is_read_whole(tmp_path: Path):
    write_lineage(tmp_path, RECORD)
    record = read_run_record(tmp_path)
    assert record.run_id == "run-7"
    assert record.params == {"lr": "0.1", "depth": "4"}
    assert record.metrics == {"val_accuracy": 0.93, "epochs": 12.0}  # a JSON integer is a metric too
    assert record.datasets == [Dataset("iris-train", "d1g3st", "s3://data/iris.parquet")]
    assert record.notes == "trained on the March refresh"


def test_no_lineage_json_is_an_empty_record(tmp_path: Path):
    assert read_run_record(tmp_path) == RunRecord()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", ["invalid JSON"]),
        ({"params": {"lr": 0.1}}, ["$.params.lr", "str"]),
        ({"metrics": {"auc": "high"}}, ["$.metrics.auc"]),
        ({"metrics": {"auc": True}}, ["$.metrics.auc"]),
        ({"datasets": [{"digest": "x"}]}, ["name", "$.datasets[0]"]),
        ({"run": "typo for run_id"}, ["run"]),
        ({"sha256": "0" * 64}, ["sha256"]),  # driftline states the digest itself, never the file
        (["run-7"], ["object"]),
    ],
)
def test_a_bad_lineage_json_names_the_file_and_the_field(tmp_path: Path, body: object, words: list[str]):
    path = write_lineage(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        read_run_record(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message


def test_an_oversized_lineage_json_is_refused_by_its_size(tmp_path: Path):
    path = tmp_path / LINEAGE_FILE
    with path.open("wb") as fh:
        fh.truncate(1 << 30)  # sparse: refused by its size, so the gigabyte is never read
    with pytest.raises(ConfigError, match=rf"{path}: {1 << 30} bytes, over the {MAX_LINEAGE_BYTES}"):
        read_run_record(tmp_path)


def test_a_placed_version_is_named_by_its_registry_reference(tmp_path: Path):
    files = tmp_path / "fetched"
    files.mkdir()
    (files / "model.onnx").write_bytes(b"onnx bytes")
    write_lineage(files, {"run_id": "another version's run"})  # the cache may hold another version's file
    placement = Placement(tmp_path / "repo", "mlflow+http://registry:5000")
    final = placement.place(
        "iris", 3, files, "a" * 64, None, ref="models:/iris/3", lineage=json.dumps({"run_id": "r3"}).encode()
    )
    record = read_run_record(final)
    assert record.run_id == "r3"
    lineage = lineage_of(record, final.parent, 3, final / "model.onnx", "a" * 64)
    assert (lineage.source_uri, lineage.registry, lineage.sha256) == (
        "models:/iris/3",
        "mlflow+http://registry:5000",
        "a" * 64,
    )
    # Other bytes than the sync placed (replaced by hand since): the folder is where the version came from.
    by_hand = lineage_of(record, final.parent, 3, final / "model.onnx", "b" * 64)
    assert (by_hand.source_uri, by_hand.registry) == (str(final), None)
    # Without a lineage from the source, the cached folder's lineage.json is not taken for this version's.
    bare = placement.place("iris", 4, files, "a" * 64, None, ref="models:/iris/4")
    assert not (bare / LINEAGE_FILE).exists()


async def test_the_table_loads_a_version_with_its_lineage_and_fails_one_with_a_bad_one(tmp_path: Path, iris_weights):
    repo = build_test_repository(tmp_path / "models", iris_weights)
    write_lineage(repo / "iris" / "1", RECORD)
    bad = write_lineage(repo / "iris" / "2", {"params": {"lr": 0.1}})
    table = ModelTable(Repository(repo), asyncio.get_running_loop())
    try:
        await table.load_all()
        loaded = table.loaded()
        assert set(loaded["iris"]) == {1}
        lineage = loaded["iris"][1].lineage
        artifact = repo / "iris" / "1" / "model.onnx"
        assert lineage == Lineage(
            **{**RECORD, "datasets": [Dataset(**RECORD["datasets"][0])]},
            sha256=hashlib.sha256(artifact.read_bytes()).hexdigest(),
            source_uri=str(artifact.parent),
        )
        reason = table.failures("iris")[2]
        assert str(bad) in reason
        assert "$.params.lr" in reason
        # A version without lineage.json has a lineage all the same: its digest and folder.
        mlp = loaded["mlp"][1].lineage
        assert mlp is not None
        assert mlp.run_id is None
        assert mlp.source_uri == str(repo / "mlp" / "1")
    finally:
        await table.close()


def test_segments_carry_their_versions_lineage_and_a_parquet_export_keeps_it(tmp_path: Path, iris_weights):
    repo = build_test_repository(tmp_path / "models", iris_weights)
    source = Repository(repo).model("iris")
    root = tmp_path / "captures"
    db = open_database(tmp_path / "driftline.db")
    try:
        index = CaptureIndex(db)
        service = CaptureService(root, index, CaptureSettings(enabled=True))
        lineages = {v: Lineage(run_id=f"run-{v}", sha256=f"{v}" * 64, source_uri=f"/m/{v}") for v in (1, 2)}
        for version, lineage in lineages.items():
            plan = service.plan("iris", version, source, lineage)
            assert plan is not None
            for request, entity in ((f"q{version}", None), (f"e{version}", "cust")):
                inputs = {"x": np.ones((2, 4), np.float32)}
                outputs = {"label": np.array([1, 2])}
                model = ("iris", version, lineage.sha256)
                service.take(plan, model, request, "default", (T0, 7), 2, inputs, outputs, entity)
        # An erasure rewrites the segments: what is left of them keeps its stamp.
        assert service.erase("cust")[0] == 4
        service.close()
        stamp = {v: {"run_id": f"run-{v}", "sha256": f"{v}" * 64, "source_uri": f"/m/{v}"} for v in (1, 2)}
        segments = index.segments("iris")
        assert sorted(s.version for s in segments) == [1, 2]
        for segment in segments:
            assert json.loads(pq.read_schema(root / segment.path).metadata[LINEAGE_KEY]) == stamp[segment.version]
        out = tmp_path / "export.parquet"
        assert CaptureReader(root, index).export(out, "parquet", "iris") == 4
        exported = json.loads(pq.read_schema(out).metadata[LINEAGE_KEY])
        assert exported == {str(v): stamp[v] for v in (1, 2)}
    finally:
        db.close()
