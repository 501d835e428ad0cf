"""Serving: the live model table, the batcher over the Rust queue, and per-model statistics."""

from driftline.serving.batcher import Batcher
from driftline.serving.stats import ModelStats
from driftline.serving.table import LoadedModel, ModelTable

__all__ = ["Batcher", "LoadedModel", "ModelStats", "ModelTable"]
