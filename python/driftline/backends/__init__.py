"""Model runtimes behind one small interface: onnxruntime and torch (imported only when a torch model loads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.backends.base import Backend, TensorSpec, check_declared_signature

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.repository.model_config import ModelConfig

__all__ = ["Backend", "TensorSpec", "check_declared_signature", "load_backend"]


def load_backend(kind: str, path: Path, config: ModelConfig) -> Backend:
    """Load one instance of a model with the named backend (``onnx`` or ``torch``)."""
    if kind == "torch":
        from driftline.backends.torch import TorchBackend

        return TorchBackend(path, config)
    from driftline.backends.onnx import OnnxBackend

    return OnnxBackend(path, config)
