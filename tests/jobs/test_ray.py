"""The Ray engine on a real local Ray instance: equal outputs to the local engine for Parquet and CSV."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest

from driftline.errors import BadRequest
from driftline.jobs import JobSpec, run_local

ray = pytest.importorskip("ray")
from driftline.jobs.ray import run_ray  # noqa: E402 - only with ray installed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def make_input(tmp_path: Path, fmt: str, rows: int = 3000) -> Path:
    rng = np.random.default_rng(5)
    x = rng.normal(5, 1.5, (rows, 4)).astype(np.float32)
    df = pl.DataFrame({"id": np.arange(rows), **{f"f{i}": x[:, i] for i in range(4)}})
    path = tmp_path / f"in.{fmt}"
    getattr(df, f"write_{fmt}")(path)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_ray_equals_local(repo: Path, tmp_path: Path, fmt: str):
    source = make_input(tmp_path, fmt)
    common = {"model": "iris", "inputs": [str(source)], "repository": str(repo), "passthrough": ["id"]}
    local = run_local(JobSpec(output=str(tmp_path / "local"), chunk_rows=700, **common))
    remote = run_ray(JobSpec(output=str(tmp_path / "ray"), batch_size=256, chunk_rows=700, instances=2, **common))
    assert remote.rows == local.rows == 3000
    # Both engines name parts part-FFFFF-CCCCCC.parquet (input file, chunk), as the README documents.
    assert remote.parts == local.parts == [f"part-00000-{c:06d}.parquet" for c in range(5)]
    assert sorted(p.name for p in (tmp_path / "ray").glob("*.parquet")) == remote.parts
    a = pl.read_parquet(tmp_path / "local" / "part-*.parquet").sort("id")
    b = pl.read_parquet(tmp_path / "ray" / "*.parquet").sort("id")
    assert a["id"].to_list() == b["id"].to_list()
    assert a["label"].to_list() == b["label"].to_list()
    np.testing.assert_allclose(
        np.stack(a["probabilities"].to_numpy()), np.stack(b["probabilities"].to_numpy()), rtol=1e-6
    )
    assert json.loads((tmp_path / "ray" / "_manifest.json").read_text())["rows"] == 3000


def test_ray_refuses_what_it_cannot_do(repo: Path, tmp_path: Path):
    source = make_input(tmp_path, "parquet", 10)
    with pytest.raises(BadRequest, match="local engine only"):
        run_ray(
            JobSpec(
                model="iris", inputs=[str(source)], output=str(tmp_path / "o"), repository=str(repo), on_null="file"
            )
        )
    with pytest.raises(BadRequest, match="needs 4 columns"):
        run_ray(JobSpec(model="iris", inputs=[str(source)], output=str(tmp_path / "o"), repository=str(repo)))


def test_ray_summary_agrees_with_local_drift_included(repo: Path, tmp_path: Path):
    from driftline.repository.demo import IRIS_FEATURES, iris_like_data

    x_ref, _ = iris_like_data(3000, seed=21)
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        repo / "iris" / "reference.parquet"
    )
    x, _ = iris_like_data(2000, seed=22)
    shifted = pl.DataFrame({"id": np.arange(2000), **{f"f{i}": x[:, i] for i in range(4)}})
    shifted = shifted.with_columns(pl.col("f2") + 2.5, f0=pl.when(pl.col("id") % 100 == 0).then(None).otherwise("f0"))
    inputs = [tmp_path / "a.parquet", tmp_path / "b.csv"]
    shifted.head(1200).write_parquet(inputs[0])
    shifted.tail(800).write_csv(inputs[1])
    common = {"model": "iris", "inputs": [str(p) for p in inputs], "repository": str(repo), "passthrough": ["id"]}
    common["chunk_rows"] = 500
    local = msgspec.to_builtins(run_local(JobSpec(output=str(tmp_path / "local"), **common)))
    remote = msgspec.to_builtins(run_ray(JobSpec(output=str(tmp_path / "ray"), instances=2, **common)))
    assert set(local) == set(remote)
    assert local["drift"] is not None
    assert remote["drift"] == local["drift"]
    assert "petal_length" in remote["drift"]["drifted"]
    for key in ("model", "version", "rows", "rejected", "parts"):
        assert remote[key] == local[key], key
    assert remote["rejected"] == 20
    assert remote["parts"] == [f"part-0000{f}-00000{c}.parquet" for f, n in ((0, 3), (1, 2)) for c in range(n)]
    manifest = json.loads((tmp_path / "ray" / "_manifest.json").read_text())
    assert manifest["drift"] == local["drift"]
