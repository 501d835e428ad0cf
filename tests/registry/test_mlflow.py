"""MlflowSource against a real `mlflow server` (SQLite backend, proxied artifacts) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import pytest
from tests.e2e.conftest import free_port
from tests.mlflow_server import (
    log_model_run,
    mlflow_client,
    publish_onnx_version,
    register_version,
)

from driftline.registry import ArtifactCache, IntegrityError, RegistryUnavailable, open_source
from driftline.registry.mlflow import MlflowSource
from driftline.repository.demo import build_classifier_onnx, build_mlp_onnx

pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(180)]

IRIS_CONFIG = "max_batch_size = 16\n"


def unique(prefix: str) -> str:
    """Model names unique per test: the server lives for the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def onnx_files(tmp_path: Path, iris_weights) -> list[Path]:
    w, b = iris_weights
    paths = [tmp_path / "one.onnx", tmp_path / "two.onnx"]
    build_classifier_onnx(paths[0], w, b)
    build_classifier_onnx(paths[1], w * 2, b)
    return paths


def test_open_source_gives_mlflow_source():
    source = open_source("mlflow+http://127.0.0.1:5000")
    assert isinstance(source, MlflowSource)
    assert source.tracking_uri == "http://127.0.0.1:5000"
    assert source.url == "mlflow+http://127.0.0.1:5000"


def test_lists_models_versions_aliases_and_digests(mlflow_server, onnx_files: list[Path], tmp_path: Path):
    iris, mlp, empty = unique("iris"), unique("mlp"), unique("empty")
    v1 = publish_onnx_version(mlflow_server.url, iris, onnx_files[0], aliases=("prod",), config_toml=IRIS_CONFIG)
    v2 = publish_onnx_version(mlflow_server.url, iris, onnx_files[1], aliases=("canary", "latest-good"))
    assert (v1, v2) == (1, 2)
    build_mlp_onnx(tmp_path / "mlp.onnx", 8, 8, 1, 2)
    assert publish_onnx_version(mlflow_server.url, mlp, tmp_path / "mlp.onnx", sha256=None) == 1
    mlflow_client(mlflow_server.url).create_registered_model(empty)  # no versions: nothing to sync

    source = open_source(mlflow_server.registry_url)
    models = {m.name: m for m in source.list_models()}
    assert iris in models
    assert mlp in models
    assert empty not in models
    model = models[iris]
    assert sorted(model.versions) == [1, 2]
    assert model.aliases == {"prod": 1, "canary": 2, "latest-good": 2}
    assert model.config_toml is None
    assert model.versions[1].sha256 == sha256(onnx_files[0])
    assert model.versions[2].sha256 == sha256(onnx_files[1])
    assert model.versions[2].ref == f"models:/{iris}/2"
    assert model.versions[2].model == iris
    assert model.versions[2].version == 2
    assert model.versions[2].created is not None
    assert models[mlp].versions[1].sha256 is None
    assert models[mlp].aliases == {}


def test_fetch_and_cache_give_the_published_bytes(mlflow_server, onnx_files: list[Path], tmp_path: Path):
    name = unique("iris")
    publish_onnx_version(mlflow_server.url, name, onnx_files[0], config_toml=IRIS_CONFIG)
    publish_onnx_version(mlflow_server.url, name, onnx_files[1], aliases=("prod",))
    source = open_source(mlflow_server.registry_url)
    model = next(m for m in source.list_models() if m.name == name)
    cache = ArtifactCache(tmp_path / "cache")
    first = cache.store(source, model.versions[1])
    assert first.artifact == first.path / "model.onnx"
    assert first.artifact.read_bytes() == onnx_files[0].read_bytes()
    assert first.sha256 == sha256(onnx_files[0])
    assert (first.path / "config.toml").read_text() == IRIS_CONFIG  # the config travels in the artifact folder
    second = cache.store(source, model.versions[2])
    assert second.artifact.read_bytes() == onnx_files[1].read_bytes()
    assert sorted(p.name for p in cache.root.iterdir()) == sorted([first.sha256, second.sha256])


def test_wrong_sha256_tag_is_refused(mlflow_server, onnx_files: list[Path], tmp_path: Path):
    name = unique("iris")
    stated = "0" * 64
    publish_onnx_version(mlflow_server.url, name, onnx_files[0], sha256=stated)
    source = open_source(mlflow_server.registry_url)
    version = next(m for m in source.list_models() if m.name == name).versions[1]
    assert version.sha256 == stated
    cache = ArtifactCache(tmp_path / "cache")
    with pytest.raises(IntegrityError, match=f"{name}/1: sha256 mismatch: registry says {stated}"):
        cache.store(source, version)
    assert list(cache.root.iterdir()) == []


def test_bad_sha256_tag_skips_the_version(mlflow_server, onnx_files: list[Path]):
    name = unique("iris")
    publish_onnx_version(mlflow_server.url, name, onnx_files[0], sha256="not-a-digest")
    publish_onnx_version(mlflow_server.url, name, onnx_files[1])
    source = open_source(mlflow_server.registry_url)
    model = next(m for m in source.list_models() if m.name == name)
    assert sorted(model.versions) == [2]
    assert any(f"{name}/1" in p for p in source.problems)


@pytest.mark.parametrize("layout", ["runs-uri", "nested"])
def test_other_sources_are_fetched_flat(mlflow_server, onnx_files: list[Path], tmp_path: Path, layout: str):
    """A version whose source is a runs:/ URI, and one whose model file sits deeper in the logged folder."""
    name = unique("iris")
    client = mlflow_client(mlflow_server.url)
    data = onnx_files[0].read_bytes()
    if layout == "runs-uri":
        run_id, _ = log_model_run(client, {"model/model.onnx": data, "model/config.toml": IRIS_CONFIG.encode()})
        register_version(client, name, f"runs:/{run_id}/model", run_id)
    else:
        files = {"model/onnx/model.onnx": data, "model/onnx/config.toml": IRIS_CONFIG.encode(), "model/README": b"x"}
        run_id, artifact_uri = log_model_run(client, files)
        register_version(client, name, f"{artifact_uri}/model", run_id)
    source = open_source(mlflow_server.registry_url)
    version = next(m for m in source.list_models() if m.name == name).versions[1]
    dest = tmp_path / "dest"
    dest.mkdir()
    source.fetch(version, dest)
    assert (dest / "model.onnx").read_bytes() == data
    assert (dest / "config.toml").read_text() == IRIS_CONFIG
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_missing_version_is_unavailable(mlflow_server, onnx_files: list[Path], tmp_path: Path):
    name = unique("iris")
    publish_onnx_version(mlflow_server.url, name, onnx_files[0])
    source = open_source(mlflow_server.registry_url)
    version = next(m for m in source.list_models() if m.name == name).versions[1]
    mlflow_client(mlflow_server.url).delete_model_version(name, "1")
    with pytest.raises(RegistryUnavailable, match=f"fetch {name}/1"):
        source.fetch(version, tmp_path / "dest")
    assert [m for m in source.list_models() if m.name == name] == []


def test_stopped_server_is_unavailable_quickly(mlflow_server, tmp_path: Path, onnx_files: list[Path]):
    # A version listed by the session's server, then asked of an address where no server listens any more (one this
    # test bound and closed): what a source sees after its server stopped, without a second MLflow server (~10 s).
    name = unique("iris")
    publish_onnx_version(mlflow_server.url, name, onnx_files[0])
    version = next(m for m in open_source(mlflow_server.registry_url).list_models() if m.name == name).versions[1]
    source = open_source(f"mlflow+http://127.0.0.1:{free_port()}")
    before = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    start = time.monotonic()
    with pytest.raises(RegistryUnavailable, match=r"registry mlflow\+http://127\.0\.0\.1:\d+: cannot list models"):
        source.list_models()
    with pytest.raises(RegistryUnavailable, match=f"cannot fetch {name}/1"):
        source.fetch(version, tmp_path / "dest")
    assert time.monotonic() - start < 15  # MLflow's own defaults retry for minutes
    # The short-retry settings are only in force during the source's calls.
    assert {k: os.environ.get(k) for k in before} == before
