"""Live quality as a running server holds it: a model's ``[quality]``, its captured rows and its labels, joined.

One place answers "how good is this model now": the quality route, its Prometheus gauges and the quality alerts
all call :meth:`LiveQuality.report`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from driftline.capture.rows import FIXED
from driftline.errors import Conflict
from driftline.feedback.join import Joined, join
from driftline.feedback.report import QualityReport, quality_of
from driftline.quality.intervals import DEFAULT_RESAMPLES

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from driftline.capture.reader import CaptureReader
    from driftline.repository.model_config import QualityConfig
    from driftline.serving.table import ModelTable
    from driftline.store.feedback import FeedbackStore

__all__ = ["LiveQuality", "measure"]


def measure(
    quality: QualityConfig,
    joined: Joined,
    window: timedelta | int | None = None,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
) -> QualityReport:
    """The quality report of ``joined`` as the model's ``[quality]`` reads its outputs (task, label and score
    outputs, classes, positive class); ``resamples``: the bootstrap's (1 where only the values are wanted).

    Raises:
        BadRequest: as quality_of.
    """
    return quality_of(
        joined,
        quality.task,
        quality.label_output,
        quality.score_output,
        quality.classes,
        quality.positive,
        window,
        confidence=confidence,
        resamples=resamples,
    )


class LiveQuality:
    """Quality per version of the models a server serves, from what it captured and the labels it was sent."""

    def __init__(self, table: ModelTable, labels: FeedbackStore, reader: CaptureReader | None) -> None:
        """``reader`` is None when the server captures nothing (every label is then unmatched)."""
        self._table = table
        self._labels = labels
        self._reader = reader

    def config(self, name: str) -> QualityConfig:
        """The model's ``[quality]``: from a loaded version's config (no file read), else from the repository.

        Raises:
            ModelNotFound: not in the repository.
            Conflict: the model has no ``[quality]`` table (its labels cannot be checked).
        """
        versions = self._table.loaded().get(name)
        if versions:
            quality = next(iter(versions.values())).source.config.quality
        else:
            self._table.repository.require(name)
            quality = self._table.repository.model(name).config.quality
        if quality is None:
            raise Conflict(
                f"model {name!r} has no [quality] table in its config.toml (task and label_output): "
                "its labels cannot be checked, so none are taken"
            )
        return quality

    def report(
        self,
        name: str,
        *,
        version: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        window: timedelta | int | None = None,
        confidence: float = 0.95,
    ) -> QualityReport:
        """Quality of ``name`` per version (one version when given) and window, over rows captured in
        ``[since, until)``; blocking (reads segments and the store): call it on a thread from the event loop.

        Raises:
            ModelNotFound, Conflict: as :meth:`config`.
            BadRequest: a window that is not positive, labels of the wrong kind for the predictions, ...
        """
        quality = self.config(name)
        joined = self.joined(name, version=version, since=since, until=until)
        if joined.captured == 0:  # nothing captured (yet): no version to report, every label unmatched
            return QualityReport(task=quality.task, unmatched=joined.unmatched, versions=[])
        return measure(quality, joined, window, confidence)

    def joined(
        self, name: str, *, version: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Joined:
        """The model's rows captured in ``[since, until)`` (one version when given), joined to its labels; blocking."""
        return join(self._captured(name, version, since, until), self._labels.labels(name))

    def _captured(self, name: str, version: int | None, since: datetime | None, until: datetime | None) -> pl.DataFrame:
        if self._reader is None:
            return pl.from_arrow(FIXED.empty_table())  # type: ignore[return-value]
        return self._reader.frame(name, version, since, until)
