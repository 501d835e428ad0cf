"""Request bodies: the demo model's from its reference data, random ones from a signature, the refusals."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from driftline.errors import ConfigError
from driftline.repository import Repository
from driftline.repository.demo import build_demo_repository, build_mixed_onnx, build_mlp_onnx
from driftline.tune.bodies import request_bodies


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bodies")
    build_demo_repository(root)
    build_mixed_onnx(root / "mixed" / "1" / "model.onnx")
    build_mlp_onnx(root / "wide" / "1" / "model.onnx", 8, 4, 1, 2)
    return root


def test_demo_bodies_carry_reference_rows(repo: Path) -> None:
    source = Repository(repo).model("iris")
    bodies = request_bodies(source, "iris", 3, count=5)
    assert len(bodies) == 5
    first = msgspec.json.decode(bodies[0])["inputs"]
    assert [(i["name"], i["shape"], i["datatype"]) for i in first] == [("x", [3, 4], "FP32")]
    # Iris-like features are positive measurements in centimetres: reference rows, not standard normals.
    assert all(0 < v < 10 for v in first[0]["data"])
    assert bodies == request_bodies(source, "iris", 3, count=5)  # seeded


def test_random_bodies_fit_every_datatype(repo: Path) -> None:
    bodies = request_bodies(Repository(repo).model("mixed"), "mixed", 2, count=2)
    inputs = {i["name"]: i for i in msgspec.json.decode(bodies[0])["inputs"]}
    assert inputs["ids"]["shape"] == [2, 3]
    assert all(isinstance(v, int) for v in inputs["ids"]["data"])
    assert all(isinstance(v, bool) for v in inputs["mask"]["data"])
    assert inputs["tag"]["datatype"] == "BYTES"
    assert all(isinstance(v, str) for v in inputs["tag"]["data"])
    wide = msgspec.json.decode(request_bodies(Repository(repo).model("wide"), "wide", 1, count=1)[0])
    assert wide["inputs"][0]["shape"] == [1, 8]


def test_trace_rows_give_one_body_each(repo: Path) -> None:
    bodies = request_bodies(Repository(repo).model("iris"), "iris", 1, rows=[1, 4, 2])
    assert [msgspec.json.decode(b)["inputs"][0]["shape"][0] for b in bodies] == [1, 4, 2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"request_batch": 0}, "--request-batch 0"),
        ({"request_batch": 4097}, "--request-batch 4097"),
        ({"request_batch": 1, "rows": [1, 5000]}, "5000 rows"),
        ({"request_batch": 1, "count": 0}, "count 0"),
    ],
)
def test_refusals(repo: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        request_bodies(Repository(repo).model("iris"), "iris", **kwargs)  # type: ignore[arg-type]


def test_a_row_over_16_mib_is_refused_before_building(tmp_path: Path) -> None:
    # 5M float32 features a row: 20 MB, refused from the signature alone.
    build_mlp_onnx(tmp_path / "huge" / "1" / "model.onnx", 5_000_000, 1, 1, 1)
    with pytest.raises(ConfigError, match=r"one row of input .x.*over 16 MiB"):
        request_bodies(Repository(tmp_path).model("huge"), "huge", 1)
