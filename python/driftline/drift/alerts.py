"""Alert states and their change events (:class:`Transitions`, shared by drift and quality), and drift's own:
ok/drift per model version, and its Prometheus gauges.

Delivery is not decided here: an event is handed, encoded, to a ``send`` callable (the server's one
WebhookSender), which must never block.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import msgspec

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from driftline.drift.report import DriftReport

__all__ = ["AlertManager", "Claim", "DriftEvent", "Send", "Transitions"]

log = logging.getLogger("driftline.drift.alerts")

State = Literal["ok", "drift"]
#: Hands an encoded event to delivery (the server's WebhookSender.send); must return at once.
Send = Callable[[bytes], None]
#: Asked before a change is sent: (the key as JSON, the new state) -> whether this process announces it.
Claim = Callable[[str, str], bool]
K = TypeVar("K", bound=Hashable)
S = TypeVar("S", bound=str)
E = TypeVar("E", bound=msgspec.Struct)


class Transitions(Generic[K, S, E]):
    """A state per key, and an event for each change of it: kept (the latest ``history``) and sent.

    Attributes:
        events: The most recent events, oldest first.
    """

    def __init__(self, initial: S, send: Send | None = None, history: int = 1000, claim: Claim | None = None) -> None:
        """Every key starts in ``initial``; events go to ``send`` (None: kept only). ``claim(key, state)``: asked
        before a change is sent, False when another process announced it already (then it is kept, not sent)."""
        self._claim = claim
        self._lock = threading.Lock()
        self._initial = initial
        self._states: dict[K, S] = {}
        self._send = send
        self.events: deque[E] = deque(maxlen=history)

    def state(self, key: K) -> S:
        """The key's current state (``initial`` before any move)."""
        with self._lock:
            return self._states.get(key, self._initial)

    def move(self, key: K, new: S, event: Callable[[S], E | None]) -> E | None:
        """Set the key's state; on a change, ``event(previous)`` is recorded and sent (None: a silent change).

        Returns:
            The event, when one was made.
        """
        with self._lock:
            previous = self._states.get(key, self._initial)
            self._states[key] = new
            made = None if new == previous else event(previous)
            if made is not None:
                self.events.append(made)
        if made is not None and self._send is not None and self._announces(key, new):
            self._send(msgspec.json.encode(made))
        return made

    def _announces(self, key: K, new: S) -> bool:
        if self._claim is None:
            return True
        try:
            return self._claim(msgspec.json.encode(key).decode(), str(new))
        except Exception:
            log.exception("alert state not shared (sending it anyway)")
            return True


class DriftEvent(msgspec.Struct, frozen=True, tag_field="kind", tag="drift"):
    """A change of a model version's dataset drift state; its JSON carries ``"kind": "drift"``.

    Attributes:
        model: Model name ("" when the report had none).
        version: Model version ("" when the report had none).
        previous: State before.
        state: State now.
        drifted_features: Features whose verdict is "drift" in the report that caused the change.
        drifted_share: Share of drifted features.
        time: UNIX time of the change.
    """

    model: str
    version: str
    previous: State
    state: State
    drifted_features: list[str]
    drifted_share: float
    time: float


class AlertManager:
    """Turns reports into state transitions per (model, version), events, webhooks and gauges.

    Attributes:
        events: The most recent events, oldest first (at most `history`).
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        send: Send | None = None,
        history: int = 1000,
        claim: Claim | None = None,
    ) -> None:
        """Gauges go in ``registry`` (None: none); events to ``send``, once across the processes sharing the store
        when ``claim`` is given (every process judges the same merged windows, so they see the same changes)."""
        self._transitions: Transitions[tuple[str, str], State, DriftEvent] = Transitions("ok", send, history, claim)
        self.events = self._transitions.events
        self._pvalue = self._distance = self._detected = None
        if registry is not None:
            from prometheus_client import Gauge

            # Two gauges, not one: a p-value drifts downwards and a distance upwards, so a single
            # "score" could not carry one alert threshold (`< 0.05` for the first, `> 0.2` for the other).
            labels = ["model", "version", "feature", "stat"]
            self._pvalue = Gauge(
                "driftline_drift_pvalue",
                "Latest p-value of a feature's statistical test (ks, chi2, ...): lower means more drift.",
                labels,
                registry=registry,
            )
            self._distance = Gauge(
                "driftline_drift_distance",
                "Latest distance of a feature from its reference (psi, wasserstein, js, ...): higher means more drift.",
                labels,
                registry=registry,
            )
            self._detected = Gauge(
                "driftline_drift_detected",
                "1 when the feature's latest verdict is drift, else 0.",
                ["model", "version", "feature"],
                registry=registry,
            )

    def state(self, model: str, version: str) -> State:
        """Current state of a model version ("ok" before any report).

        Args:
            model: Model name.
            version: Model version.

        Returns:
            "ok" or "drift".
        """
        return self._transitions.state((model, version))

    def observe(self, report: DriftReport) -> DriftEvent | None:
        """Record a report: update gauges, and on an ok<->drift change emit an event and send it.

        A report whose dataset verdict is "insufficient_data" leaves the state as it was.

        Args:
            report: The report (its model/version label the state).

        Returns:
            The event, when the state changed.
        """
        model, version = report.model or "", report.version or ""
        self._update_gauges(model, version, report)
        if report.verdict == "insufficient_data":
            return None
        new: State = "drift" if report.verdict == "drift" else "ok"

        def changed(previous: State) -> DriftEvent:
            log.info("drift state of %s/%s: %s -> %s", model, version, previous, new)
            return DriftEvent(
                model=model,
                version=version,
                previous=previous,
                state=new,
                drifted_features=[f.name for f in report.features if f.verdict == "drift"],
                drifted_share=report.drifted_share,
                time=time.time(),
            )

        return self._transitions.move((model, version), new, changed)

    def _update_gauges(self, model: str, version: str, report: DriftReport) -> None:
        if self._pvalue is None or self._distance is None or self._detected is None:
            return
        for f in report.features:
            labels = (model, version, f.name, f.stat)
            if f.pvalue is not None:
                self._pvalue.labels(*labels).set(f.pvalue)
                stale = self._distance
            else:
                self._distance.labels(*labels).set(f.value)
                stale = self._pvalue
            with contextlib.suppress(KeyError):  # the same stat never sits in both families
                stale.remove(*labels)
            self._detected.labels(model, version, f.name).set(1.0 if f.verdict == "drift" else 0.0)
