from pathlib import Path

import numpy as np
import pytest

from driftline.backends import TensorSpec, load_backend
from driftline.errors import ConfigError
from driftline.repository import ModelConfig, TensorConfig
from driftline.repository.demo import build_classifier_torchscript

torch = pytest.importorskip("torch")

SIGNATURE = {
    "inputs": [TensorConfig("x", "FP32", [-1, 4])],
    "outputs": [TensorConfig("probabilities", "FP32", [-1, 3]), TensorConfig("label", "INT64", [-1])],
}


@pytest.fixture
def scripted(tmp_path: Path, iris_weights) -> Path:
    path = tmp_path / "model.pt"
    assert build_classifier_torchscript(path, *iris_weights)
    return path


def test_torchscript_matches_numpy(scripted: Path, iris_weights):
    w, bias = iris_weights
    b = load_backend("torch", scripted, ModelConfig(**SIGNATURE))
    x = np.random.default_rng(1).normal(5, 1, (5, 4)).astype(np.float32)
    x.flags.writeable = False  # binary request bodies arrive read-only
    out = b.infer({"x": x})
    np.testing.assert_array_equal(out["label"], (x @ w + bias).argmax(1))
    assert out["probabilities"].dtype == np.float32
    assert b.platform == "pytorch_libtorch"


def test_torchscript_needs_a_signature(scripted: Path):
    with pytest.raises(ConfigError, match=r"\[\[inputs\]\]"):
        load_backend("torch", scripted, ModelConfig())


def test_torch_export_signature_is_derived(tmp_path: Path):
    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 + 1

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(Net(), (torch.ones(2, 3),), dynamic_shapes={"x": {0: batch}})
    path = tmp_path / "model.pt2"
    torch.export.save(program, str(path))
    b = load_backend("torch", path, ModelConfig())
    assert b.inputs == (TensorSpec("x", "FP32", (-1, 3)),)
    assert b.outputs == (TensorSpec("output_0", "FP32", (-1, 3)),)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(b.infer({"x": x})["output_0"], x * 2 + 1)


@pytest.mark.gpu
def test_cuda_fallback_and_errors(scripted: Path):
    if torch.cuda.is_available():
        assert load_backend("torch", scripted, ModelConfig(device="cuda:0", **SIGNATURE)).device == "cuda:0"
        return
    with pytest.raises(ConfigError, match="no CUDA device"):
        load_backend("torch", scripted, ModelConfig(device="cuda:0", **SIGNATURE))
    auto = load_backend("torch", scripted, ModelConfig(device="auto", **SIGNATURE))
    assert auto.device == "cpu"
    assert auto.notes


def test_corrupt_archive_is_a_config_error(tmp_path: Path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot load"):
        load_backend("torch", bad, ModelConfig(**SIGNATURE))
