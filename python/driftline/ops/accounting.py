"""What the request path's traffic counting reads from the model table: each model's SLO latency threshold (once
per model and minute) and each loaded version's counters and queue depth (once per save)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from driftline.serving.traffic import VersionSample

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftline.config import SloSettings
    from driftline.serving.table import ModelTable

__all__ = ["threshold_of", "version_samples"]


def threshold_of(table: ModelTable, default: SloSettings) -> Callable[[str], float] | None:
    """A model's latency threshold in seconds from a loaded version's ``[slo]`` over ``default`` (inf: its SLOs
    are off); None when SLO accounting is off server-wide."""
    if not default.enabled:
        return None

    def threshold(name: str) -> float:
        versions = table.loaded().get(name)
        own = next(iter(versions.values())).source.config.slo.over(default) if versions else default
        return own.latency_threshold_ms / 1e3 if own.enabled else math.inf

    return threshold


def version_samples(table: ModelTable) -> Callable[[], list[VersionSample]]:
    """Each loaded version's rows and batches executed since it loaded and its queue depth now."""

    def sample() -> list[VersionSample]:
        return [
            VersionSample(
                name,
                version,
                model.stats.inference_count,
                model.stats.execution_count,
                model.batcher.stats().get("queued_requests", 0),
            )
            for name, versions in table.loaded().items()
            for version, model in versions.items()
        ]

    return sample
