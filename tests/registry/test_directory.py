"""DirectorySource over real folders: a local tree and fsspec's in-memory filesystem."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import fsspec
import pytest
from tests.helpers import write_config

from driftline.errors import ConfigError
from driftline.registry import DirectorySource, RegistryUnavailable, open_source
from driftline.repository.demo import build_classifier_onnx, build_mlp_onnx

IRIS_CONFIG = "max_batch_size = 16\n\n[aliases]\nprod = 1\ncanary = 2\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def registry(tmp_path: Path, iris_weights) -> Path:
    """iris (1 with a sidecar, 2 with a subfolder, aliases), mlp (no config) and a handful of things to skip."""
    w, b = iris_weights
    root = tmp_path / "registry"
    build_classifier_onnx(root / "iris" / "1" / "model.onnx", w, b)
    digest = sha256(root / "iris" / "1" / "model.onnx")
    (root / "iris" / "1" / "model.onnx.sha256").write_text(f"{digest.upper()}  model.onnx\n")
    build_classifier_onnx(root / "iris" / "2" / "model.onnx", w * 2, b)
    (root / "iris" / "2" / "extra").mkdir()
    (root / "iris" / "2" / "extra" / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    (root / "iris" / "3").mkdir()  # no artifact: not a version
    (root / "iris" / "notes").mkdir()  # not all digits: not a version
    write_config(root / "iris", IRIS_CONFIG)
    build_mlp_onnx(root / "mlp" / "1" / "model.pt", 8, 8, 1, 2)  # any bytes do; the name makes it a torch version
    build_mlp_onnx(root / "mlp" / "4" / "model.onnx", 8, 8, 1, 2)
    build_mlp_onnx(root / "-bad-name" / "1" / "model.onnx", 8, 8, 1, 2)
    build_mlp_onnx(root / ".hidden" / "1" / "model.onnx", 8, 8, 1, 2)
    (root / "README.md").write_text("not a model\n")
    return root


def test_lists_models_versions_aliases_digests_and_config(registry: Path):
    source = DirectorySource(str(registry))
    models = {m.name: m for m in source.list_models()}
    assert list(models) == ["iris", "mlp"]
    iris = models["iris"]
    assert sorted(iris.versions) == [1, 2]
    assert iris.versions[1].sha256 == sha256(registry / "iris" / "1" / "model.onnx")  # lower-cased from the sidecar
    assert iris.versions[2].sha256 is None
    assert iris.versions[1].model == "iris"
    assert iris.versions[1].version == 1
    assert iris.versions[1].ref.endswith("/iris/1")
    assert iris.aliases == {"prod": 1, "canary": 2}
    assert iris.config_toml == IRIS_CONFIG
    mlp = models["mlp"]
    assert sorted(mlp.versions) == [1, 4]
    assert mlp.aliases == {}
    assert mlp.config_toml is None
    assert source.problems == []


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ("max_batch_size = [\n", "config.toml"),
        ('[aliases]\nprod = "one"\n', "aliases.prod"),
        ("[aliases]\nprod = 0\n", "aliases.prod"),
        ('aliases = "prod"\n', "[aliases]"),
    ],
)
def test_bad_config_skips_that_model_and_is_reported(registry: Path, config: str, why: str):
    write_config(registry / "mlp", config)
    source = DirectorySource(str(registry))
    assert [m.name for m in source.list_models()] == ["iris"]
    assert len(source.problems) == 1
    assert "mlp" in source.problems[0]
    assert why in source.problems[0]


def test_bad_sidecar_and_version_zero_are_reported(registry: Path):
    (registry / "iris" / "2" / "model.onnx.sha256").write_text("not-a-digest  model.onnx\n")
    build_mlp_onnx(registry / "iris" / "0" / "model.onnx", 8, 8, 1, 2)
    source = DirectorySource(str(registry))
    iris = next(m for m in source.list_models() if m.name == "iris")
    # A sidecar that cannot be read must not turn into "no digest, nothing to check".
    assert sorted(iris.versions) == [1]
    assert any("iris/2" in p and "sha256" in p for p in source.problems)
    assert any("'0'" in p for p in source.problems)


def test_problems_reset_on_each_listing(registry: Path):
    write_config(registry / "mlp", "max_batch_size = [\n")
    source = DirectorySource(str(registry))
    source.list_models()
    assert source.problems
    (registry / "mlp" / "config.toml").unlink()
    assert [m.name for m in source.list_models()] == ["iris", "mlp"]
    assert source.problems == []


def test_missing_root_is_unavailable(tmp_path: Path):
    url = str(tmp_path / "nowhere")
    with pytest.raises(RegistryUnavailable, match="nowhere") as info:
        DirectorySource(url).list_models()
    assert info.value.http_status == 503


def test_root_that_is_a_file_is_unavailable(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RegistryUnavailable, match="does not exist"):
        DirectorySource(str(tmp_path / "file")).list_models()


def test_fetch_copies_every_file(registry: Path, tmp_path: Path):
    source = DirectorySource(f"file://{registry}")
    version = next(m for m in source.list_models() if m.name == "iris").versions[2]
    dest = tmp_path / "dest"
    dest.mkdir()
    source.fetch(version, dest)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert got == ["extra/labels.txt", "model.onnx"]
    assert (dest / "model.onnx").read_bytes() == (registry / "iris" / "2" / "model.onnx").read_bytes()
    assert (dest / "extra" / "labels.txt").read_text() == "setosa\nversicolor\nvirginica\n"


def test_fetch_of_a_vanished_version_is_unavailable(registry: Path, tmp_path: Path):
    source = DirectorySource(str(registry))
    version = next(m for m in source.list_models() if m.name == "mlp").versions[4]
    for p in (registry / "mlp" / "4").iterdir():
        p.unlink()
    (registry / "mlp" / "4").rmdir()
    with pytest.raises(RegistryUnavailable, match="mlp/4"):
        source.fetch(version, tmp_path / "dest")


@pytest.fixture
def memory_registry(registry: Path):
    """The same tree copied into fsspec's process-wide memory filesystem, under a unique root."""
    fs = fsspec.filesystem("memory")
    root = f"/registry-{uuid.uuid4().hex}"
    for path in registry.rglob("*"):
        if path.is_file():
            fs.pipe_file(f"{root}/{path.relative_to(registry).as_posix()}", path.read_bytes())
    yield f"memory://{root}"
    fs.rm(root, recursive=True)


def test_memory_url_lists_and_fetches(memory_registry: str, registry: Path, tmp_path: Path):
    source = open_source(memory_registry)
    assert isinstance(source, DirectorySource)
    models = {m.name: m for m in source.list_models()}
    assert list(models) == ["iris", "mlp"]
    assert models["iris"].aliases == {"prod": 1, "canary": 2}
    assert models["iris"].versions[1].sha256 == sha256(registry / "iris" / "1" / "model.onnx")
    assert models["iris"].versions[1].ref.startswith("memory://")
    dest = tmp_path / "dest"
    source.fetch(models["iris"].versions[2], dest)
    assert (dest / "model.onnx").read_bytes() == (registry / "iris" / "2" / "model.onnx").read_bytes()
    assert (dest / "extra" / "labels.txt").is_file()


def test_missing_memory_root_is_unavailable():
    with pytest.raises(RegistryUnavailable, match="memory://"):
        open_source(f"memory://missing-{uuid.uuid4().hex}").list_models()


def test_open_source_plain_path_is_a_directory(registry: Path):
    source = open_source(str(registry))
    assert isinstance(source, DirectorySource)
    assert source.url == str(registry)


@pytest.mark.parametrize("url", ["nosuchprotocol://host/models", "mlflow+ftp://host:5000", "mlflow://host:5000"])
def test_open_source_unknown_scheme_is_a_config_error(url: str):
    with pytest.raises(ConfigError, match=url.replace("+", r"\+")):
        open_source(url)
