import threading
import time
from pathlib import Path

import numpy as np
import pytest

from driftline.backends import TensorSpec, load_backend
from driftline.errors import ConfigError
from driftline.repository import ModelConfig, TensorConfig
from driftline.repository.demo import build_classifier_onnx, build_mlp_onnx


@pytest.fixture
def classifier(tmp_path: Path, iris_weights) -> Path:
    path = tmp_path / "model.onnx"
    build_classifier_onnx(path, *iris_weights)
    return path


def test_signature_comes_from_the_graph(classifier: Path):
    b = load_backend("onnx", classifier, ModelConfig())
    assert b.inputs == (TensorSpec("x", "FP32", (-1, 4)),)
    assert b.outputs == (TensorSpec("probabilities", "FP32", (-1, 3)), TensorSpec("label", "INT64", (-1,)))
    assert b.platform == "onnxruntime_onnx"
    assert b.device == "cpu"


def test_infer_matches_numpy(classifier: Path, iris_weights):
    w, bias = iris_weights
    b = load_backend("onnx", classifier, ModelConfig())
    x = np.random.default_rng(0).normal(5, 1, (7, 4)).astype(np.float32)
    out = b.infer({"x": x})
    logits = x @ w + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(out["probabilities"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["label"], logits.argmax(1))


def test_declared_signature_must_match(classifier: Path):
    wrong_type = ModelConfig(inputs=[TensorConfig("x", "FP64", [-1, 4])])
    with pytest.raises(ConfigError, match="declared FP64"):
        load_backend("onnx", classifier, wrong_type)
    wrong_name = ModelConfig(inputs=[TensorConfig("features", "FP32", [-1, 4])])
    with pytest.raises(ConfigError, match="do not match"):
        load_backend("onnx", classifier, wrong_name)
    narrower = ModelConfig(inputs=[TensorConfig("x", "FP32", [8, 4])])
    assert load_backend("onnx", classifier, narrower).inputs[0].shape == (8, 4)


def test_corrupt_file_is_a_config_error(tmp_path: Path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ConfigError, match="cannot load"):
        load_backend("onnx", bad, ModelConfig())


@pytest.mark.gpu
def test_cuda_requested_without_cuda_is_refused(classifier: Path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        b = load_backend("onnx", classifier, ModelConfig(device="cuda:0"))
        assert b.device == "cuda:0"
        return
    with pytest.raises(ConfigError, match=r"CUDAExecutionProvider.*onnxruntime-gpu"):
        load_backend("onnx", classifier, ModelConfig(device="cuda:0"))
    auto = load_backend("onnx", classifier, ModelConfig(device="auto"))
    assert auto.device == "cpu"
    assert "running on cpu" in auto.notes[0]


@pytest.mark.slow
def test_run_releases_the_gil(tmp_path: Path):
    """While one thread sits in session.run, a pure-Python thread keeps making progress."""
    path = tmp_path / "big.onnx"
    build_mlp_onnx(path, 256, 1024, 3, 16)
    b = load_backend("onnx", path, ModelConfig())
    x = np.ones((512, 256), np.float32)
    b.infer({"x": x})
    start = time.perf_counter()
    for _ in range(5):
        b.infer({"x": x})
    solo = (time.perf_counter() - start) / 5

    progress = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal progress
        while not stop.is_set():
            progress += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.01)
        before = progress
        b.infer({"x": x})
        during = progress - before
    finally:
        stop.set()
        t.join()
    # A held GIL would stop the spinner for the whole run; released, it keeps counting through it.
    assert solo > 0.001
    assert during > 1000
