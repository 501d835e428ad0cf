"""Builds the bundled demo repository and the toy models tests and benchmarks use; nothing is downloaded.

Every model here is made from seeded numpy arrays with onnx's helper API (and TorchScript when torch is installed).
"""

from __future__ import annotations

import itertools
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CLASSIFIER_TORCH_SIGNATURE",
    "IRIS_FEATURES",
    "build_demo_repository",
    "build_mixed_onnx",
    "build_mlp_onnx",
    "iris_like_data",
    "train_softmax",
]

_log = logging.getLogger("driftline.repository.demo")
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
_OPSET = 17
_IR_VERSION = 8


def iris_like_data(rows: int, seed: int = 0) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Three Gaussian classes with iris-like means and spreads (4 features)."""
    rng = np.random.default_rng(seed)
    means = np.array([[5.0, 3.4, 1.5, 0.25], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    spread = np.array([[0.35, 0.38, 0.17, 0.1], [0.5, 0.31, 0.47, 0.2], [0.64, 0.32, 0.55, 0.27]])
    labels = rng.integers(0, 3, size=rows)
    x = means[labels] + rng.standard_normal((rows, 4)) * spread[labels]
    return x.astype(np.float32), labels.astype(np.int64)


def train_softmax(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], classes: int, epochs: int = 300, lr: float = 0.1
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Fit a multinomial logistic regression by full-batch gradient descent on standardised features.

    Returns:
        Weights ``(features, classes)`` and bias ``(classes,)`` that apply to the raw features.
    """
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = np.zeros((x.shape[1], classes))
    b = np.zeros(classes)
    onehot = np.eye(classes)[y]
    for _ in range(epochs):
        logits = z @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / len(x)
        w -= lr * z.T @ grad
        b -= lr * grad.sum(0)
    # Fold the standardisation into the weights so the model takes raw features.
    w_raw = w / std[:, None]
    b_raw = b - (mean / std) @ w
    return w_raw.astype(np.float32), b_raw.astype(np.float32)


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=_IR_VERSION)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def build_classifier_onnx(path: Path, weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]) -> None:
    """A linear softmax classifier: input ``x`` [-1, F] -> ``probabilities`` [-1, C] and ``label`` [-1]."""
    features, classes = weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        ],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    _save(graph, path)


def build_mlp_onnx(path: Path, inputs: int, hidden: int, layers: int, outputs: int, seed: int = 0) -> None:
    """A ReLU MLP with seeded random weights: ``x`` [-1, inputs] -> ``y`` [-1, outputs] (for tests and benchmarks)."""
    rng = np.random.default_rng(seed)
    sizes = [inputs, *([hidden] * layers), outputs]
    nodes, inits = [], []
    current = "x"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "y" if i == len(sizes) - 2 else f"h{i}"
        gemm_out = out if out == "y" else f"g{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [gemm_out]))
        if out != "y":
            nodes.append(helper.make_node("Relu", [gemm_out], [out]))
        current = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", outputs])],
        initializer=inits,
    )
    _save(graph, path)


def build_mixed_onnx(path: Path, width: int = 3) -> None:
    """Integer, boolean and string inputs: ``ids`` INT64 and ``mask`` BOOL [-1, width], ``tag`` BYTES [-1, 1].

    Outputs ``total`` INT64 [-1] (the sum of the ids where the mask is set) and ``tag_echo`` BYTES [-1, 1], so that
    tests reach every non-float datatype path of the protocol and the backend.
    """
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["mask"], ["mask_i"], to=TensorProto.INT64),
            helper.make_node("Mul", ["ids", "mask_i"], ["kept"]),
            helper.make_node("ReduceSum", ["kept", "axes"], ["total"], keepdims=0),
            helper.make_node("Identity", ["tag"], ["tag_echo"]),
        ],
        "mixed",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", width]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", width]),
            helper.make_tensor_value_info("tag", TensorProto.STRING, ["batch", 1]),
        ],
        [
            helper.make_tensor_value_info("total", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("tag_echo", TensorProto.STRING, ["batch", 1]),
        ],
        initializer=[numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    _save(graph, path)


def build_classifier_torchscript(path: Path, weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]) -> bool:
    """The same classifier as TorchScript; returns False (and builds nothing) when torch is not installed."""
    try:
        import torch
    except ImportError:
        return False

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(weights.shape[0], weights.shape[1])
            with torch.no_grad():
                self.linear.weight.copy_(torch.from_numpy(weights.T.copy()))
                self.linear.bias.copy_(torch.from_numpy(bias.copy()))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.linear(x)
            return torch.softmax(logits, dim=1), torch.argmax(logits, dim=1)

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # torch >= 2.10 deprecates TorchScript, but it is still what most exported torch models are.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
        scripted: Any = torch.jit.script(Classifier().eval())
        scripted.save(str(path))
    return True


_IRIS_CONFIG = """\
# The demo classifier: 4 iris-like features -> class probabilities and label.
max_batch_size = 64
instances = 1
version_policy = {{ policy = "all" }}
{aliases}{signature}
[batching]
max_queue_delay_us = 500

# What its predictions are, so that ground-truth feedback can be checked and live quality reported.
[quality]
task = "classification"
label_output = "label"
score_output = "probabilities"
classes = [0, 1, 2]
"""
# TorchScript carries no signature: config.toml declares it (tests reuse this one).
CLASSIFIER_TORCH_SIGNATURE = """
[[inputs]]
name = "x"
datatype = "FP32"
shape = [-1, 4]

[[outputs]]
name = "probabilities"
datatype = "FP32"
shape = [-1, 3]

[[outputs]]
name = "label"
datatype = "INT64"
shape = [-1]
"""


def build_demo_repository(root: str | Path) -> list[str]:
    """Create the demo repository at ``root``: ``iris`` (ONNX, versions 1 and 2), ``iris_torch`` (with torch).

    Returns:
        The names of the models written.
    """
    root = Path(root)
    x, y = iris_like_data(600, seed=7)
    names = ["iris"]
    iris = root / "iris"
    for version, epochs in ((1, 50), (2, 400)):
        w, b = train_softmax(x, y, classes=3, epochs=epochs)
        build_classifier_onnx(iris / str(version) / "model.onnx", w, b)
    # Requests that name no version go to the champion (seeded into the store on first start).
    (iris / "config.toml").write_text(_IRIS_CONFIG.format(aliases="aliases = { champion = 2 }\n", signature=""))
    _write_reference(iris / "reference.parquet", x)
    w, b = train_softmax(x, y, classes=3, epochs=400)
    if build_classifier_torchscript(root / "iris_torch" / "1" / "model.pt", w, b):
        (root / "iris_torch" / "config.toml").write_text(
            _IRIS_CONFIG.format(aliases="", signature=CLASSIFIER_TORCH_SIGNATURE)
        )
        _write_reference(root / "iris_torch" / "reference.parquet", x)
        names.append("iris_torch")
    _log.info("built demo repository at %s: %s", root, ", ".join(names))
    return names


def _write_reference(path: Path, x: npt.NDArray[np.float32]) -> None:
    import polars as pl

    pl.DataFrame({name: x[:, i] for i, name in enumerate(IRIS_FEATURES)}).write_parquet(path)
