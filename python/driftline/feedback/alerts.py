"""Quality alerts: each ``[[quality.alerts]]`` rule judged per loaded version over its window of labeled rows.

A rule's state per version is ok, firing or insufficient (never judged on enough labeled rows yet). A window
with fewer than ``min_labeled`` labeled rows leaves the state as it was, like drift's insufficient_data; every
change between ok and firing is an event on drift's path (drift.alerts.Transitions, the server's one webhook
sender), and names the URL that exports the window's labeled rows, so a retraining pipeline fetches them at once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlencode

import msgspec
import polars as pl

from driftline.drift.alerts import Transitions
from driftline.errors import DriftlineError
from driftline.feedback.rules import CONFIDENCE, ESTIMATED, RuleWindow, State, estimated, judge, overall_of, realized
from driftline.repository.model_config import QUALITY_METRICS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from driftline.drift.alerts import Claim, Send
    from driftline.feedback.join import Joined
    from driftline.feedback.service import Baseline, LiveQuality
    from driftline.repository.model_config import QualityConfig, QualityRule

__all__ = ["GAUGED", "QualityAlerts", "QualityEvent", "VersionFigures"]

_log = logging.getLogger("driftline.feedback.alerts")

#: Metrics exported as gauges: every one (an estimated one where the version has a CBPE baseline).
GAUGED = tuple(QUALITY_METRICS)


class RuleRef(msgspec.Struct, frozen=True):
    """The rule an event is about."""

    metric: str
    op: Literal["below", "above", "drop"]
    threshold: float
    min_labeled: int


class QualityEvent(msgspec.Struct, frozen=True, tag_field="kind", tag="quality"):
    """A rule's change between ok and firing on one version; its JSON carries ``"kind": "quality"``.

    Attributes:
        value, lower, upper: The metric on the window and its interval (at ``confidence``).
        export_url: GET it for the window's labeled captured rows (Parquet; ``&format=jsonl`` for JSON lines).
    """

    model: str
    version: str
    previous: State
    state: State
    rule: RuleRef
    value: float
    lower: float
    upper: float
    confidence: float
    window: RuleWindow
    export_url: str
    time: float


@dataclass(frozen=True, slots=True)
class VersionFigures:
    """A version's quality over the gauge window: the driftline_quality* gauges read it."""

    labeled: int
    captured: int
    coverage: float
    metrics: dict[str, float]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class QualityAlerts:
    """Checks every rule of a model's loaded versions, keeps the gauges' figures, and sends state changes."""

    def __init__(
        self,
        live: LiveQuality,
        *,
        base_url: str,
        gauge_window: timedelta,
        send: Send | None = None,
        history: int = 1000,
        claim: Claim | None = None,
    ) -> None:
        """Export URLs start with ``base_url`` (the server's public address); events go to ``send``, once across
        the processes sharing the store when ``claim`` is given (:class:`driftline.store.alert_states.AlertStates`)."""
        self._live = live
        self._base_url = base_url.rstrip("/")
        self._gauge_window = gauge_window
        self._transitions: Transitions[tuple[str, int, QualityRule], State, QualityEvent] = Transitions(
            "insufficient", send, history, claim
        )
        self.events = self._transitions.events
        self._lock = threading.Lock()
        self._figures: dict[tuple[str, int], VersionFigures] = {}
        # Where a row-count window last started: labels are only ever added, so the next window starts there or
        # later, and the next check reads from there instead of the version's whole history.
        self._starts: dict[tuple[str, int, QualityRule], datetime] = {}

    def state(self, model: str, version: int, rule: QualityRule) -> State:
        """A rule's state on a version ("insufficient" until judged on enough labeled rows)."""
        return self._transitions.state((model, version, rule))

    def figures(self) -> dict[tuple[str, int], VersionFigures]:
        """The latest figures per (model, version)."""
        with self._lock:
            return dict(self._figures)

    def retain(self, loaded: Mapping[str, Iterable[int]]) -> None:
        """Forget the figures (so the gauges) of every version not in ``loaded``."""
        keep = {(name, v) for name, versions in loaded.items() for v in versions}
        with self._lock:
            for key in [k for k in self._figures if k not in keep]:
                del self._figures[key]
            for start in [k for k in self._starts if k[:2] not in keep]:
                del self._starts[start]

    def check(self, name: str, versions: Iterable[int], now: datetime | None = None) -> list[QualityEvent]:
        """Measure each version of ``name`` over the gauge window and judge its rules; blocking (reads segments).

        Raises:
            ModelNotFound, Conflict: as LiveQuality.config (no [quality]).
        """
        quality = self._live.config(name)
        moment = now or datetime.now(UTC)
        events = []
        for version in versions:
            joined = self._live.joined(name, version=version, since=self._since(name, version, quality, moment))
            baseline = self._live.baseline(name, version, quality)
            events += self.observe(name, version, quality, joined, moment, baseline)
        return events

    def observe(
        self,
        name: str,
        version: int,
        quality: QualityConfig,
        joined: Joined,
        now: datetime,
        baseline: Baseline | None = None,
    ) -> list[QualityEvent]:
        """Take one version's joined rows (back to what its rules' windows and the gauges need): update its
        figures and judge each rule (estimated ones against ``baseline``); returns the events of the states that
        changed."""
        self._gauge(name, version, quality, joined, now, baseline)
        events = []
        for rule in quality.alerts:
            event = self._judge(name, version, rule, quality, joined, now, baseline)
            if event is not None:
                events.append(event)
        return events

    def _since(self, name: str, version: int, quality: QualityConfig, now: datetime) -> datetime | None:
        """The earliest capture time any rule's window or the gauges need (None: all retained rows)."""
        since = [now - self._gauge_window]
        for rule in quality.alerts:
            span = rule.span
            with self._lock:
                start = now - span if span is not None else self._starts.get((name, version, rule))
            if start is None:
                return None
            since.append(start)
        return min(since)

    def _gauge(
        self, name: str, version: int, quality: QualityConfig, joined: Joined, now: datetime, baseline: Baseline | None
    ) -> None:
        start = now - self._gauge_window
        rows, captures = joined.rows.filter(pl.col("ts") >= start), joined.captures.filter(pl.col("ts") >= start)
        metrics: dict[str, float] = {}
        if rows.height:
            try:
                overall = overall_of(quality, rows, captures, resamples=1)  # values only: a gauge has no interval
            except DriftlineError as exc:
                _log.warning("quality of %s version %d not measured: %s", name, version, exc)
                overall = None
            for metric in GAUGED:
                estimate = realized(overall, metric)
                if estimate is not None:
                    metrics[metric] = estimate.value
        if baseline is not None and captures.height:
            for metric in (m for m in GAUGED if m.startswith(ESTIMATED)):
                try:
                    estimate = estimated(quality, captures, baseline, metric)
                except DriftlineError as exc:
                    _log.warning("estimated quality of %s version %d not measured: %s", name, version, exc)
                    break
                if estimate is not None and not math.isnan(estimate.value):
                    metrics[metric] = estimate.value
        coverage = rows.height / captures.height if captures.height else 0.0
        with self._lock:
            self._figures[(name, version)] = VersionFigures(rows.height, captures.height, coverage, metrics)

    def _judge(
        self,
        name: str,
        version: int,
        rule: QualityRule,
        quality: QualityConfig,
        joined: Joined,
        now: datetime,
        baseline: Baseline | None,
    ) -> QualityEvent | None:
        key = (name, version, rule)
        try:
            # The value alone decides; the bootstrap interval (seconds on many rows) only when an event needs it.
            verdict = judge(rule, quality, joined, now, resamples=1, baseline=baseline)
            if verdict.state not in ("insufficient", self.state(name, version, rule)):
                verdict = judge(rule, quality, joined, now, baseline=baseline)
        except DriftlineError as exc:
            _log.warning("quality rule %s of %s version %d not judged: %s", rule.metric, name, version, exc)
            return None
        if rule.span is None:
            with self._lock:
                counted = verdict.window and (
                    verdict.window.captured if rule.metric.startswith(ESTIMATED) else verdict.window.labeled
                )
                if verdict.window is not None and counted == (rule.last_rows or rule.min_labeled):
                    self._starts[key] = verdict.window.start
                else:  # fewer rows than the window holds (an erasure): read the whole history next time
                    self._starts.pop(key, None)
        if verdict.state == "insufficient" or verdict.estimate is None or verdict.window is None:
            return None
        estimate, window, new = verdict.estimate, verdict.window, verdict.state

        def changed(previous: State) -> QualityEvent | None:
            if previous == "insufficient" and new == "ok":
                return None  # first judged and fine: nothing to clear
            _log.info("quality rule %s of %s/%d: %s -> %s", rule.metric, name, version, previous, new)
            return QualityEvent(
                model=name,
                version=str(version),
                previous=previous,
                state=new,
                rule=RuleRef(rule.metric, rule.op, rule.threshold, rule.min_labeled),
                value=estimate.value,
                lower=estimate.lower,
                upper=estimate.upper,
                confidence=CONFIDENCE,
                window=window,
                export_url=self.export_url(name, version, window),
                time=time.time(),
            )

        return self._transitions.move(key, new, changed)

    def export_url(self, name: str, version: int, window: RuleWindow) -> str:
        """The URL of the window's labeled captured rows (GET, one call)."""
        query = urlencode(
            {"version": version, "since": _stamp(window.start), "until": _stamp(window.end), "labeled": "true"}
        )
        return f"{self._base_url}/v1/models/{quote(name, safe='')}/captures?{query}"
