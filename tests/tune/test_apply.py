"""--apply's config writer: patched in place with comments kept, validated first, the old file kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from driftline.errors import ConfigError
from driftline.repository.model_config import load_model_config
from driftline.tune.apply import write_config
from driftline.tune.spec import Candidate

if TYPE_CHECKING:
    from pathlib import Path

ORIGINAL = '# the iris model\nmax_batch_size = 8  # tuned by hand\n\n[onnx]\ngraph_optimization_level = "all"\n'


def test_write_config_patches_and_keeps_the_old_file(tmp_path: Path) -> None:
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "config.toml").write_text(ORIGINAL)
    chosen = Candidate(max_batch_size=16, preferred_batch_sizes=(8,), instances=2, threads=2)
    path, backup = write_config(tmp_path, "iris", chosen, "onnx")
    assert backup.read_text() == ORIGINAL
    assert path.read_text().startswith("# the iris model\n")
    config = load_model_config(path)
    assert (config.max_batch_size, config.instances, config.onnx.intra_op_threads) == (16, 2, 2)
    assert config.batching.preferred_batch_sizes == [8]
    assert config.onnx.graph_optimization_level == "all"
    write_config(tmp_path, "iris", Candidate(), "onnx")
    assert load_model_config(backup).max_batch_size == 16  # an older backup is overwritten
    assert sorted(p.name for p in (tmp_path / "iris").iterdir()) == ["config.toml", "config.toml.before-tune"]


def test_write_config_refuses_without_writing(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.toml").write_text("instances = 1\n")
    with pytest.raises(ConfigError, match="would not load"):
        write_config(tmp_path, "m", Candidate(max_batch_size=4, preferred_batch_sizes=(0,)), "onnx")
    assert (tmp_path / "m" / "config.toml").read_text() == "instances = 1\n"
    assert not (tmp_path / "m" / "config.toml.before-tune").exists()
    with pytest.raises(ConfigError, match="no model folder"):
        write_config(tmp_path, "absent", Candidate(), "onnx")
