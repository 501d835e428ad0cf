from pathlib import Path

import pytest

from driftline.errors import ConfigError
from driftline.repository import ModelConfig, VersionPolicy, load_model_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_missing_file_means_defaults(tmp_path: Path):
    assert load_model_config(tmp_path / "config.toml") == ModelConfig()


def test_full_config_parses(tmp_path: Path):
    cfg = load_model_config(
        write(
            tmp_path,
            """
backend = "onnx"
max_batch_size = 8
device = "cuda:1"
instances = 2
[[inputs]]
name = "x"
datatype = "FP32"
shape = [-1, 4]
[batching]
preferred_batch_sizes = [4, 8]
max_queue_delay_us = 100
priority_levels = 3
default_priority_level = 2
[onnx]
intra_op_threads = 2
graph_optimization_level = "basic"
""",
        )
    )
    assert cfg.device == "cuda:1"
    assert cfg.batching.preferred_batch_sizes == [4, 8]
    assert cfg.inputs is not None
    assert cfg.inputs[0].shape == [-1, 4]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("max_batch_size = -1", "max_batch_size"),
        ('device = "gpu"', "device"),
        ('device = "cpu\\n"', "device"),  # "$" let a trailing newline through
        ("instances = 0", "instances"),
        ("unknown_key = 1", "unknown_key"),
        ("[batching]\npreferred_batch_sizes = [64]", "preferred_batch_sizes"),
        ("[batching]\nmax_queue_delay_us = 'soon'", "max_queue_delay_us"),
        ('[onnx]\ngraph_optimization_level = "max"', "graph_optimization_level"),
        ('[[inputs]]\nname = "x"\ndatatype = "FLOAT"\nshape = [-1]', "FLOAT"),
        ("max_batch_size = 4 x", "invalid TOML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, key: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_model_config(path)
    assert str(path) in str(info.value)
    assert key in str(info.value)


def test_version_policy_selects():
    assert VersionPolicy().select([3, 1, 2]) == [3]
    assert VersionPolicy(policy="latest", latest=2).select([3, 1, 2]) == [2, 3]
    assert VersionPolicy(policy="all").select([2, 1]) == [1, 2]
    assert VersionPolicy(policy="specific", versions=[1, 5]).select([1, 2, 3]) == [1]
