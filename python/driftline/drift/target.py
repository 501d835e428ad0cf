"""What to watch for one model version: its reference profile, its policy, and the input that carries the features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from driftline.drift.policy import DriftPolicy, resolve
from driftline.drift.profile import ReferenceProfile
from driftline.errors import ConfigError, CoreError

if TYPE_CHECKING:
    from driftline.backends.base import TensorSpec
    from driftline.repository.layout import ModelSource

__all__ = ["DriftTarget", "ModelDriftConfig", "drift_target"]


class ModelDriftConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[drift]`` section of a model's config.toml."""

    # Watch the model when its folder has reference.parquet (or a saved reference.profile).
    enabled: bool = True
    categorical: list[str] = []
    bins: int = 10
    policy: DriftPolicy = DriftPolicy()


@dataclass(frozen=True, slots=True)
class DriftTarget:
    """A model's reference profile, its drift policy, and the name of the [-1, F] input whose columns it profiles."""

    profile: ReferenceProfile
    policy: DriftPolicy
    input_name: str


def drift_target(source: ModelSource, inputs: tuple[TensorSpec, ...]) -> DriftTarget | None:
    """Resolve a model's drift settings and reference data (building and saving the profile on first use).

    Returns:
        None when the model has no reference data or ``[drift] enabled = false``.

    Raises:
        ConfigError: a bad [drift] section, or reference data that does not fit the model's input.
    """
    where = source.path / "config.toml"
    try:
        config = msgspec.convert(source.config.drift, ModelDriftConfig)
    except (msgspec.ValidationError, CoreError, ValueError) as exc:
        raise ConfigError(f"{where}: [drift] {exc}") from None
    if not config.enabled:
        return None
    try:
        profile = ReferenceProfile.for_model(source.path, categorical=config.categorical or None, bins=config.bins)
    except (CoreError, ValueError, OSError) as exc:
        raise ConfigError(f"{source.path}: cannot build the drift reference profile: {exc}") from None
    if profile is None:
        return None
    try:
        # Thresholds that fit no statistic (a p-value threshold of 5, say) are a config error at load, not a
        # failure of every later drift check.
        resolve(profile.schema, profile.n_rows, config.policy)
    except CoreError as exc:
        raise ConfigError(f"{where}: [drift.policy] {exc}") from None
    width = len(profile.names)
    if len(inputs) != 1 or len(inputs[0].shape) != 2 or inputs[0].shape[1] not in (-1, width):
        raise ConfigError(
            f"{source.path}: reference data has {width} features {profile.names}, but drift watching needs one "
            f"[-1, {width}] input (the model has {[list(t.shape) for t in inputs]}); set [drift] enabled = false "
            "to serve it unwatched"
        )
    return DriftTarget(profile, config.policy, inputs[0].name)
