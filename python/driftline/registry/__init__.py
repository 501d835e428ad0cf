"""Model registry sources (a folder over fsspec, MLflow's Model Registry) and the cache their artifacts land in.

`open_source` lives here, above both kinds of source, so that `source.py` (the interface they implement) imports
neither of them.
"""

from __future__ import annotations

from driftline.registry.cache import ArtifactCache, CachedArtifact
from driftline.registry.directory import DirectorySource
from driftline.registry.mlflow import MlflowSource  # imports mlflow only when a source is used
from driftline.registry.source import (
    IntegrityError,
    RegistrySource,
    RegistryUnavailable,
    RemoteModel,
    RemoteVersion,
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


def open_source(url: str) -> RegistrySource:
    """Open the registry source a configured URL names.

    Args:
        url: ``mlflow+http://host:port`` or ``mlflow+https://...`` for an MLflow tracking server; anything else
            is a directory laid out like the repository: a plain path or any fsspec URL (``file://``, ``memory://``,
            ``s3://`` ...).

    Returns:
        The source; nothing is contacted yet.

    Raises:
        ConfigError: The scheme is unknown, the fsspec protocol it names is not installed, or mlflow is not.
    """
    if url.startswith("mlflow+"):
        return MlflowSource(url)  # which refuses any mlflow+ scheme but http and https
    return DirectorySource(url)
