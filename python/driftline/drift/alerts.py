"""Drift alerts: ok/drift state per model version, transition events, webhooks, Prometheus gauges."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from prometheus_client import CollectorRegistry

    from driftline.drift.report import DriftReport

__all__ = ["AlertManager", "DriftEvent", "WebhookSender"]

log = logging.getLogger("driftline.drift.alerts")

State = Literal["ok", "drift"]


class DriftEvent(msgspec.Struct, frozen=True):
    """A change of a model version's dataset drift state.

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


class WebhookSender:
    """POSTs JSON to URLs from one background thread, with retries and exponential backoff.

    `send` never blocks: it enqueues (dropping, with a log line, when `max_pending` are waiting).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
        max_pending: int = 1000,
    ) -> None:
        self.urls = list(urls)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_pending)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driftline-webhooks", daemon=True)
        self._thread.start()

    def send(self, body: bytes) -> None:
        """Queue a JSON body for every URL.

        Args:
            body: The JSON payload.
        """
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.failed += len(self.urls)
            log.warning("webhook queue full; dropped an event for %d url(s)", len(self.urls))

    def _post(self, url: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - URLs come from the operator's config
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            response.read()

    def _deliver(self, url: str, body: bytes) -> None:
        for attempt in range(self.retries + 1):
            try:
                self._post(url, body)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if attempt == self.retries:
                    self.failed += 1
                    log.error(  # noqa: TRY400 - one line per failure, not a traceback
                        "webhook %s failed after %d attempt(s): %s", url, attempt + 1, exc
                    )
                    return
                log.warning("webhook %s attempt %d failed: %s; retrying", url, attempt + 1, exc)
                # Exponential backoff; waiting on the stop event lets close() cut it short.
                if self._stop.wait(self.backoff * 2**attempt):
                    return
            else:
                self.delivered += 1
                return

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is None:
                    return
                for url in self.urls:
                    self._deliver(url, body)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event has been delivered or given up.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            Whether the queue drained in time.
        """
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within `timeout`), then stop the thread.

        Args:
            timeout: Seconds to wait for the thread.
        """
        self.flush(timeout)
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)


class AlertManager:
    """Turns reports into state transitions per (model, version), events, webhooks and gauges.

    Attributes:
        events: The most recent events, oldest first (at most `history`).
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        webhooks: Sequence[str] = (),
        history: int = 1000,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], State] = {}
        self.events: deque[DriftEvent] = deque(maxlen=history)
        self.sender = WebhookSender(webhooks, retries=retries, backoff=backoff, timeout=timeout) if webhooks else None
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
        with self._lock:
            return self._states.get((model, version), "ok")

    def observe(self, report: DriftReport) -> DriftEvent | None:
        """Record a report: update gauges, and on an ok<->drift change emit an event and POST it.

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
        with self._lock:
            previous = self._states.get((model, version), "ok")
            self._states[(model, version)] = new
            if new == previous:
                return None
            event = DriftEvent(
                model=model,
                version=version,
                previous=previous,
                state=new,
                drifted_features=[f.name for f in report.features if f.verdict == "drift"],
                drifted_share=report.drifted_share,
                time=time.time(),
            )
            self.events.append(event)
        log.info("drift state of %s/%s: %s -> %s", model, version, previous, new)
        if self.sender is not None:
            self.sender.send(msgspec.json.encode(event))
        return event

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

    def close(self) -> None:
        """Deliver queued webhooks and stop the sender thread."""
        if self.sender is not None:
            self.sender.close()
