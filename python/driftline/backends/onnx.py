"""The onnxruntime backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from driftline.backends.base import TensorSpec, check_declared_signature
from driftline.backends.devices import CUDA_EP, onnx_plan
from driftline.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import numpy.typing as npt

    from driftline.repository.model_config import ModelConfig

__all__ = ["OnnxBackend"]

_ORT_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _spec(arg: Any, where: str) -> TensorSpec:
    datatype = _ORT_TYPES.get(arg.type)
    if datatype is None:
        raise ConfigError(f"{where}: tensor {arg.name!r} has type {arg.type}, which the protocol cannot carry")
    # Symbolic or unknown dimensions ('batch', None) are dynamic.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or ()))
    return TensorSpec(arg.name, datatype, shape)


class OnnxBackend:
    """One onnxruntime session (one model instance). ``InferenceSession.run`` releases the GIL."""

    platform = "onnxruntime_onnx"

    def __init__(self, path: Path, config: ModelConfig) -> None:
        """Create the session on the configured device and derive the signature from the graph.

        Raises:
            ConfigError: unreadable model, unavailable device, or a declared signature that does not match.
        """
        where = str(path)
        plan = onnx_plan(config.device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.onnx.intra_op_threads
        options.inter_op_num_threads = config.onnx.inter_op_threads
        options.graph_optimization_level = _OPT_LEVELS[config.onnx.graph_optimization_level]
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=plan.providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types for a bad file
            raise ConfigError(f"{where}: onnxruntime cannot load the model: {exc}") from None
        if plan.device.startswith("cuda") and CUDA_EP not in self._session.get_providers():
            raise ConfigError(f"{where}: {CUDA_EP} failed to initialise for {plan.device}")
        self.device = plan.device
        self.notes: tuple[str, ...] = (plan.note,) if plan.note else ()
        try:
            self.inputs = check_declared_signature(
                where, "inputs", config.inputs, tuple(_spec(a, where) for a in self._session.get_inputs())
            )
            self.outputs = check_declared_signature(
                where, "outputs", config.outputs, tuple(_spec(a, where) for a in self._session.get_outputs())
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._output_names = [t.name for t in self.outputs]
        self._string_inputs = frozenset(t.name for t in self.inputs if t.datatype == "BYTES")

    def infer(self, inputs: Mapping[str, npt.NDArray[np.generic]]) -> dict[str, npt.NDArray[np.generic]]:
        """Run the session once on a whole batch."""
        feed: Mapping[str, Any] = inputs
        if self._string_inputs:
            # onnxruntime's string tensors take str objects; the protocol hands us bytes.
            feed = dict(inputs)
            for name in self._string_inputs:
                feed[name] = np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else b, otypes=[object])(
                    inputs[name]
                )
        results = self._session.run(self._output_names, feed)
        return dict(zip(self._output_names, results, strict=True))

    def close(self) -> None:
        """Drop the session; onnxruntime frees it when the last reference goes."""
        del self._session
