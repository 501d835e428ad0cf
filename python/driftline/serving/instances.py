"""The instances of one model version: the artifact's digest, its backends, and their warm-up (run in a thread)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from driftline.backends import load_backend
from driftline.errors import ConfigError
from driftline.security.digests import file_sha256

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

    from driftline.backends.base import Backend
    from driftline.repository.layout import ModelSource

__all__ = ["build_instances", "fingerprint"]

_WARMUP_DTYPES = {"BOOL": np.bool_, "BYTES": np.object_}


def fingerprint(path: Path) -> tuple[int, int]:
    """The artifact's (size, mtime): what a reload compares to keep an unchanged version running."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _warmup(backend: Backend, batching: bool) -> None:
    """Run one inference on zeros so the first real request does not pay for lazy initialisation."""
    feed: dict[str, npt.NDArray[np.generic]] = {}
    for spec in backend.inputs:
        shape = tuple(1 if d < 0 else d for d in spec.shape)
        if batching and shape:
            shape = (1, *shape[1:])
        dtype = _WARMUP_DTYPES.get(spec.datatype) or np.dtype(spec.datatype.replace("FP", "float").lower())
        feed[spec.name] = np.full(shape, b"", dtype=object) if dtype is np.object_ else np.zeros(shape, dtype)
    backend.infer(feed)


def build_instances(source: ModelSource, version: int) -> tuple[list[Backend], str]:
    """Load (and warm up) every instance of a version; blocking, so callers run it in a thread.

    Returns:
        The backends and the artifact's sha256.

    Raises:
        ConfigError: the artifact cannot be loaded or its warm-up inference failed (nothing stays open).
    """
    config = source.config
    path = source.artifacts[version]
    digest = file_sha256(path)
    backends: list[Backend] = []
    try:
        for _ in range(config.instances):
            backend = load_backend(source.backend, path, config)
            if config.warmup:
                _warmup(backend, config.max_batch_size > 0)
            backends.append(backend)
    except ConfigError:
        for b in backends:
            b.close()
        raise
    except Exception as exc:  # noqa: BLE001 - warm-up failures and runtime errors of any kind
        for b in backends:
            b.close()
        raise ConfigError(f"{path}: warm-up inference failed: {exc}") from None
    return backends, digest
