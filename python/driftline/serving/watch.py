"""Connects a loaded model version to the drift monitor: registration and the batcher's batch hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.drift.target import drift_target

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftline.backends.base import TensorSpec
    from driftline.drift import DriftMonitor
    from driftline.repository.layout import ModelSource
    from driftline.serving.batcher import Arrays

__all__ = ["unwatch_version", "watch_version"]


def watch_version(
    monitor: DriftMonitor, source: ModelSource, version: int, inputs: tuple[TensorSpec, ...]
) -> Callable[[Arrays, Arrays], None] | None:
    """Register a version with the monitor when it has reference data; returns the batcher's batch hook.

    Runs in a thread at load time (building a profile from reference.parquet scans it once, then it is saved).

    Raises:
        ConfigError: a bad [drift] section, or reference data that does not match the model's input.
    """
    target = drift_target(source, inputs)
    if target is None:
        return None
    key, name = str(version), target.input_name
    monitor.register(source.name, key, target.profile, target.policy)

    def on_batch(batch_inputs: Arrays, _outputs: Arrays, model: str = source.name) -> None:
        # Only enqueues: the drift thread updates the window off the response path.
        monitor.submit(model, key, batch_inputs[name])

    return on_batch


def unwatch_version(monitor: DriftMonitor, model: str, version: int) -> None:
    """Stop watching a version (its window is dropped)."""
    monitor.unregister(model, str(version))
