"""Connects a loaded model version to drift watching: its reference profile, policy, and the batch hook."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec

from driftline.drift import DriftPolicy, ReferenceProfile
from driftline.errors import ConfigError, CoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import numpy.typing as npt

    from driftline.backends.base import TensorSpec
    from driftline.drift import DriftMonitor
    from driftline.repository.layout import ModelSource

__all__ = ["ModelDriftConfig", "unwatch_version", "watch_version"]

_log = logging.getLogger("driftline.serving")
Arrays = dict[str, "npt.NDArray[np.generic]"]


class ModelDriftConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[drift]`` section of a model's config.toml."""

    # Watch live traffic when the model folder has reference.parquet (or a saved reference.profile).
    enabled: bool = True
    categorical: list[str] = []
    bins: int = 10
    policy: DriftPolicy = DriftPolicy()


def _config(source: ModelSource) -> ModelDriftConfig:
    try:
        return msgspec.convert(source.config.drift, ModelDriftConfig)
    except (msgspec.ValidationError, CoreError, ValueError) as exc:
        raise ConfigError(f"{source.path / 'config.toml'}: [drift] {exc}") from None


def watch_version(
    monitor: DriftMonitor, source: ModelSource, version: int, inputs: tuple[TensorSpec, ...]
) -> Callable[[Arrays, Arrays], None] | None:
    """Register a version with the monitor when it has reference data; returns the batcher's batch hook.

    Runs in a thread at load time: building a profile from reference.parquet scans it once (then it is saved).
    The hook feeds the model's single 2-D input, whose columns are the reference's features in order.

    Raises:
        ConfigError: a bad [drift] section, or reference data that does not match the model's input.
    """
    config = _config(source)
    if not config.enabled:
        return None
    try:
        profile = ReferenceProfile.for_model(source.path, categorical=config.categorical or None, bins=config.bins)
    except (CoreError, ValueError, OSError) as exc:
        raise ConfigError(f"{source.path}: cannot build the drift reference profile: {exc}") from None
    if profile is None:
        return None
    features = [t for t in inputs if len(t.shape) == 2]
    if len(inputs) != 1 or not features or features[0].shape[1] not in (-1, len(profile.names)):
        raise ConfigError(
            f"{source.path}: reference data has {len(profile.names)} features {profile.names}, but drift watching "
            f"needs one [-1, {len(profile.names)}] input (the model has {[list(t.shape) for t in inputs]}); "
            "set [drift] enabled = false to serve it unwatched"
        )
    name, key = features[0].name, str(version)
    monitor.register(source.name, key, profile, config.policy)

    def on_batch(batch_inputs: Arrays, _outputs: Arrays, model: str = source.name) -> None:
        # Only enqueues: the drift thread updates the window off the response path.
        monitor.submit(model, key, batch_inputs[name])

    return on_batch


def unwatch_version(monitor: DriftMonitor, model: str, version: int) -> None:
    """Stop watching a version (its window is dropped)."""
    monitor.unregister(model, str(version))
