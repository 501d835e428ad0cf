from pathlib import Path

import pytest

from driftline.errors import ConfigError, ModelNotFound
from driftline.repository import Repository


def test_scans_models_and_versions(repo: Path):
    r = Repository(repo)
    assert r.model_names() == ["iris", "mlp"]
    iris = r.model("iris")
    assert list(iris.artifacts) == [1, 2]
    assert iris.backend == "onnx"
    assert iris.versions_to_load() == [1, 2]
    assert r.model("mlp").versions_to_load() == [1]


def test_missing_model_and_bad_names(repo: Path):
    r = Repository(repo)
    with pytest.raises(ModelNotFound, match="nope"):
        r.model("nope")
    with pytest.raises(ModelNotFound):
        r.model("../etc")


def test_model_without_versions_is_a_config_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"1/model\.onnx"):
        Repository(tmp_path).model("empty")


def test_nonexistent_root_has_no_models(tmp_path: Path):
    assert Repository(tmp_path / "missing").model_names() == []


def test_a_folder_of_non_ascii_digits_is_not_a_version(repo: Path):
    """``"²".isdigit()`` is True but ``int("²")`` raises: such a folder stopped the listing with a traceback."""
    odd = repo / "iris" / "²"
    odd.mkdir()
    (odd / "model.onnx").write_bytes((repo / "iris" / "1" / "model.onnx").read_bytes())
    assert list(Repository(repo).model("iris").artifacts) == [1, 2]
