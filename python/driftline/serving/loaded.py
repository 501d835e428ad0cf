"""One ready model version as the request path sees it: its instances, its batcher and its counters.

A leaf of the serving package: the table, the data plane, signatures, shadows and the front ends all name it, and it
names none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from driftline.serving.stats import ModelStats

if TYPE_CHECKING:
    from driftline.backends.base import Backend, TensorSpec
    from driftline.repository.layout import ModelSource
    from driftline.repository.lineage import Lineage
    from driftline.serving.batcher import Batcher

__all__ = ["LoadedModel"]


@dataclass(slots=True)
class LoadedModel:
    """One ready model version: its instances, its batcher and its counters."""

    name: str
    version: int
    source: ModelSource
    backends: list[Backend]
    batcher: Batcher
    sha256: str
    stats: ModelStats = field(default_factory=ModelStats)
    # What was loaded: the artifact's (size, mtime) and the config, so a reload keeps an unchanged version running.
    fingerprint: tuple[int, int] = (0, 0)
    # Its artifact's digest, where it came from and what trained it (status, metadata and capture show it).
    lineage: Lineage | None = None

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The input signature (every instance has the same)."""
        return self.backends[0].inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """The output signature."""
        return self.backends[0].outputs

    @property
    def max_batch_size(self) -> int:
        """Rows per batch; 0 when batching is off."""
        return self.source.config.max_batch_size
