"""A classifier that fails at run time on chosen inputs: how the experiment tests raise a challenger's error rate.

It has the demo classifier's signature (``x`` [-1, F] -> ``probabilities``, ``label``), so routing lets it answer
a canary, and answers like it, except that onnxruntime raises (an out-of-range Gather) for a batch in which any
row's first feature is above ``fail_above``: a real model failure, not a mocked one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt


def build_flaky_classifier_onnx(
    path: Path, weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32], fail_above: float
) -> None:
    """Write the model to ``path``."""
    features, classes = weights.shape
    consts = [
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(bias, "b"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "first"),
        numpy_helper.from_array(np.array([fail_above], dtype=np.float32), "limit"),
        numpy_helper.from_array(np.array(10, dtype=np.int64), "far"),
        numpy_helper.from_array(np.zeros(1, dtype=np.float32), "one_zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["raw"]),
        # x[:, 0] > limit -> index 10 into a one-element tensor: onnxruntime refuses the whole batch.
        helper.make_node("Gather", ["x", "first"], ["x0"], axis=1),
        helper.make_node("Greater", ["x0", "limit"], ["over"]),
        helper.make_node("Cast", ["over"], ["over_i"], to=TensorProto.INT64),
        helper.make_node("Mul", ["over_i", "far"], ["index"]),
        helper.make_node("Gather", ["one_zero", "index"], ["zeros"], axis=0),
        helper.make_node("Unsqueeze", ["zeros", "axis1"], ["column"]),  # [batch] -> [batch, 1]: adds 0 to each row
        helper.make_node("Add", ["raw", "column"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "flaky_classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
