"""Live quality as a running server holds it: a model's ``[quality]``, its captured rows and its labels, joined.

One place answers "how good is this model now": the quality route, its Prometheus gauges and the quality alerts
all call :meth:`LiveQuality.report`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl

from driftline.capture.rows import FIXED
from driftline.errors import BadRequest, Conflict
from driftline.feedback.join import Joined, join
from driftline.feedback.report import QualityReport, quality_of
from driftline.quality.cbpe import fit_cbpe
from driftline.quality.intervals import DEFAULT_RESAMPLES

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from driftline.capture.reader import CaptureReader
    from driftline.quality.cbpe import CBPE
    from driftline.repository.model_config import QualityConfig
    from driftline.serving.table import ModelTable
    from driftline.store.evaluations import EvaluationStore
    from driftline.store.feedback import Feedback, FeedbackStore

__all__ = ["MAX_WINDOWS", "UNMATCHED_SCAN_ROWS", "LiveQuality", "measure"]

#: The most captured rows a post's count reads the keys of (:meth:`LiveQuality.unmatched`, and the KPI route's
#: unattributed events; about 0.15 s on one core); past it the count is left out (None) rather than making every
#: post read the whole capture history.
UNMATCHED_SCAN_ROWS: Final = 250_000
#: The most windows one report lists: each labeled one costs a bootstrap (milliseconds), so ``window=1`` over a
#: million labeled rows would hold a thread for most of an hour.
MAX_WINDOWS: Final = 1_000

_log = logging.getLogger("driftline.feedback")


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a version's estimated quality is judged against: the CBPE fitted on its newest evaluation, and that
    evaluation's realized headline metrics (accuracy, f1_macro, roc_auc; None where undefined)."""

    cbpe: CBPE
    metrics: Mapping[str, float | None]


def measure(
    quality: QualityConfig,
    joined: Joined,
    window: timedelta | int | None = None,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    references: Mapping[int, CBPE] | None = None,
) -> QualityReport:
    """The quality report of ``joined`` as the model's ``[quality]`` reads its outputs (task, label and score
    outputs, classes, positive class); ``resamples``: the bootstrap's (1 where only the values are wanted);
    ``references``: per version, the CBPE fit its quality is estimated with before labels arrive.

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
        references=references,
    )


class LiveQuality:
    """Quality per version of the models a server serves, from what it captured and the labels it was sent."""

    def __init__(
        self,
        table: ModelTable,
        labels: FeedbackStore,
        reader: CaptureReader | None,
        evaluations: EvaluationStore | None = None,
    ) -> None:
        """``reader`` is None when the server captures nothing (every label is then unmatched); ``evaluations``
        holds the references CBPE estimates from (``driftline evaluate`` of a binary classifier)."""
        self._table = table
        self._labels = labels
        self._reader = reader
        self._evaluations = evaluations
        # (model, version) -> (the evaluation id it was fitted on, its baseline; None: that evaluation cannot be one).
        self._fits: dict[tuple[str, int], tuple[int, Baseline | None]] = {}
        self._fits_lock = threading.Lock()

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
        _check_windows(joined, window)
        if joined.captured == 0:  # nothing captured (yet): no version to report, every label unmatched
            return QualityReport(task=quality.task, unmatched=joined.unmatched, versions=[])
        return measure(quality, joined, window, confidence, references=self.references(name, quality, joined))

    @property
    def capturing(self) -> bool:
        """Whether the server captures at all (without it no row is captured, so no label can match)."""
        return self._reader is not None

    def captured(
        self, name: str, *, version: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pl.DataFrame:
        """The model's rows captured in ``[since, until)`` (one version when given), every column; blocking."""
        return self._captured(name, version, since, until)

    def joined(
        self,
        name: str,
        *,
        version: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        captured: pl.DataFrame | None = None,
    ) -> Joined:
        """The model's rows captured in ``[since, until)`` (one version when given), joined to its labels; blocking.
        ``captured``: rows already read by :meth:`captured`, joined instead of reading the segments again."""
        frame = self._captured(name, version, since, until) if captured is None else captured
        return join(frame, self._labels.labels(name))

    def references(self, name: str, quality: QualityConfig, joined: Joined) -> dict[int, CBPE] | None:
        """The CBPE reference of each version in ``joined`` that has one, fitted on its newest evaluation (``driftline
        evaluate``) once per evaluation; None for a model CBPE cannot estimate (no binary classifier with scores)."""
        if not self._estimable(quality):
            return None
        versions = sorted(int(v) for v in joined.captures["version"].unique())
        return {v: found.cbpe for v in versions if (found := self._baseline(name, v, quality)) is not None}

    def baseline(self, name: str, version: int, quality: QualityConfig) -> Baseline | None:
        """The version's CBPE reference and its evaluation's metrics; None when CBPE cannot estimate it."""
        return self._baseline(name, version, quality) if self._estimable(quality) else None

    def _estimable(self, quality: QualityConfig) -> bool:
        """Whether CBPE can estimate the model: a binary classifier with a score output, and evaluations to fit on."""
        classes = quality.classes
        return self._evaluations is not None and quality.score_output is not None and len(classes or ()) == 2

    def _baseline(self, name: str, version: int, quality: QualityConfig) -> Baseline | None:
        """The baseline of the version's newest evaluation: fitted once per evaluation (one summary read per call)."""
        assert self._evaluations is not None  # _estimable checked
        assert quality.classes is not None
        summary = self._evaluations.summary(name, version)
        if summary is None:
            return None
        with self._fits_lock:
            cached = self._fits.get((name, version))
        if cached is not None and cached[0] == summary.id:
            return cached[1]
        found = None
        pairs = self._evaluations.reference(name, version)
        if pairs is not None:
            classes = quality.classes
            positive = classes[1] if quality.positive is None else quality.positive
            labels, scores = pairs
            negative = classes[1 - classes.index(positive)]
            truth = np.where(labels == 1, np.array(positive, dtype=object), np.array(negative, dtype=object))
            try:
                found = Baseline(fit_cbpe(truth.tolist(), scores, positive=positive), summary.metrics)
            except BadRequest as exc:  # a reference too small or one-sided: no estimate, and the log says why
                _log.warning("%s version %d: evaluation %d is no CBPE reference: %s", name, version, summary.id, exc)
        with self._fits_lock:
            self._fits[(name, version)] = (summary.id, found)
        return found

    def unmatched(self, name: str, items: Sequence[Feedback]) -> int | None:
        """How many distinct keys among ``items`` name no captured row of ``name``, as of now: rows still queued in
        the capture writer are not visible yet (the quality report's ``unmatched`` is the live figure).

        Reads the key columns of the model's segments; None (not counted) when they hold more than
        UNMATCHED_SCAN_ROWS rows.
        """
        requests = {(f.request_id, f.row) for f in items if f.request_id is not None and f.row is not None}
        entities = {f.entity for f in items if f.entity is not None}
        if self._reader is None:
            return len(requests) + len(entities)
        found = self._reader.matched(name, requests, entities, UNMATCHED_SCAN_ROWS)
        if found is None:
            return None
        return len(requests.difference(found.requests)) + len(entities - found.entities)

    def _captured(self, name: str, version: int | None, since: datetime | None, until: datetime | None) -> pl.DataFrame:
        if self._reader is None:
            return pl.from_arrow(FIXED.empty_table())  # type: ignore[return-value]
        return self._reader.frame(name, version, since, until)


def _check_windows(joined: Joined, window: timedelta | int | None) -> None:
    """Refuse a window that would list more than MAX_WINDOWS windows, before any is computed.

    A count N lists at most labeled // N + 1 windows per version; a time span, one per distinct (version, span
    since the epoch) of the captured rows, the numbering driftline.feedback.report gives them.
    """
    if window is None or joined.captured == 0:
        return
    frame = joined.captures
    if isinstance(window, int):
        if window <= 0:
            return  # quality_of refuses it, naming it
        labeled = frame.group_by("version").agg(pl.col("labeled").sum())["labeled"]
        count = int((labeled // window + 1).sum())
    else:
        size = window // timedelta(microseconds=1)
        if size <= 0:
            return
        count = frame.select(pl.struct("version", pl.col("ts").dt.epoch("us") // size).n_unique()).item()
    if count > MAX_WINDOWS:
        raise BadRequest(
            f"window {window} would make {count:,} windows, more than {MAX_WINDOWS:,}: choose a larger window "
            "or a shorter since / until"
        )
