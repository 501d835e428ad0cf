"""Model registry sources (a folder over fsspec, MLflow's Model Registry) and the cache their artifacts land in."""

from driftline.registry.cache import ArtifactCache, CachedArtifact
from driftline.registry.directory import DirectorySource
from driftline.registry.mlflow import MlflowSource  # imports mlflow only when a source is used
from driftline.registry.source import (
    IntegrityError,
    RegistrySource,
    RegistryUnavailable,
    RemoteModel,
    RemoteVersion,
    open_source,
)

__all__ = [
    "ArtifactCache",
    "CachedArtifact",
    "DirectorySource",
    "IntegrityError",
    "MlflowSource",
    "RegistrySource",
    "RegistryUnavailable",
    "RemoteModel",
    "RemoteVersion",
    "open_source",
]
