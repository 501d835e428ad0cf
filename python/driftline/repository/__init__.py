"""The on-disk model repository: layout, per-model config and version policy."""

from driftline.repository.layout import ARTIFACT_NAMES, ModelSource, Repository
from driftline.repository.model_config import (
    BatchingConfig,
    ModelConfig,
    OnnxOptions,
    TensorConfig,
    TorchOptions,
    VersionPolicy,
    load_model_config,
)

__all__ = [
    "ARTIFACT_NAMES",
    "BatchingConfig",
    "ModelConfig",
    "ModelSource",
    "OnnxOptions",
    "Repository",
    "TensorConfig",
    "TorchOptions",
    "VersionPolicy",
    "load_model_config",
]
