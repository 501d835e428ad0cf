"""DriftMonitor: live windows per model version, fed off the response path by one drift thread."""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Any, Protocol

from driftline.drift.window import LiveWindow

if TYPE_CHECKING:
    from driftline.drift.alerts import AlertManager, DriftEvent
    from driftline.drift.policy import DriftPolicy
    from driftline.drift.profile import ReferenceProfile
    from driftline.drift.report import DriftReport

__all__ = ["DriftMonitor", "Merger"]

log = logging.getLogger("driftline.drift.monitor")

_Key = tuple[str, str]


class Merger(Protocol):
    """What merges every process's windows into one report (drift/shared.py: SharedWindows)."""

    def report(self, window: LiveWindow, policy: DriftPolicy | None = None) -> DriftReport:
        """The report on every process's windows of ``window``'s version."""
        ...

    def save(self) -> int:
        """Save this process's windows."""
        ...


class DriftMonitor:
    """Owns one LiveWindow per (model, version) and a thread that feeds them.

    Inference workers call `submit`, which only enqueues (never blocks; a full queue drops the batch and
    counts it), so drift never adds latency to a response. `check` builds a report and hands it to the
    alert manager.

    Attributes:
        dropped: Batches dropped because the queue was full (read-only; counted under a lock, since every
            inference worker thread may drop at once).
    """

    def __init__(
        self,
        alerts: AlertManager | None = None,
        *,
        max_pending: int = 1024,
        window_rows: int | None = 10_000,
        window_seconds: float | None = None,
        keep: int = 6,
        sample_cap: int = 100_000,
    ) -> None:
        self.alerts = alerts
        # Set by share(): reports (and so alerts) judge every process's windows merged, not this one's alone.
        self.merger: Merger | None = None
        self._dropped = 0
        self._window_args: dict[str, Any] = {
            "rows": window_rows,
            "seconds": window_seconds,
            "keep": keep,
            "sample_cap": sample_cap,
        }
        self._windows: dict[_Key, LiveWindow] = {}
        self._policies: dict[_Key, DriftPolicy | None] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[_Key, Any] | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="driftline-drift", daemon=True)
        self._thread.start()

    def register(
        self, model: str, version: str, profile: ReferenceProfile, policy: DriftPolicy | None = None
    ) -> LiveWindow:
        """Start watching a model version (replacing any earlier window for it).

        Args:
            model: Model name.
            version: Model version.
            profile: Its reference profile.
            policy: Its drift policy (default DriftPolicy()).

        Returns:
            The new window.
        """
        window = LiveWindow(profile, model=model, version=version, **self._window_args)
        with self._lock:
            self._windows[(model, version)] = window
            self._policies[(model, version)] = policy
        return window

    def unregister(self, model: str, version: str) -> None:
        """Stop watching a model version (queued batches for it are discarded).

        Args:
            model: Model name.
            version: Model version.
        """
        with self._lock:
            self._windows.pop((model, version), None)
            self._policies.pop((model, version), None)

    def share(self, merger: Merger) -> None:
        """Judge every report on the windows of every process sharing the store; save them a last time at close.

        Args:
            merger: The merger (SharedWindows).
        """
        self.merger = merger

    def windows(self) -> dict[tuple[str, str], LiveWindow]:
        """Every watched (model, version) and its window (a copy of the mapping)."""
        with self._lock:
            return dict(self._windows)

    def window(self, model: str, version: str) -> LiveWindow | None:
        """The window of a model version, if watched.

        Args:
            model: Model name.
            version: Model version.

        Returns:
            The window or None.
        """
        with self._lock:
            return self._windows.get((model, version))

    def policy(self, model: str, version: str) -> DriftPolicy | None:
        """The drift policy a watched version is judged by (None: the default, or not watched); the dashboard
        judges each view of the window (open, last closed, sliding) by it without alerting."""
        with self._lock:
            return self._policies.get((model, version))

    def submit(self, model: str, version: str, batch: Any) -> bool:
        """Queue a batch of inputs for the drift thread; never blocks.

        Args:
            model: Model name.
            version: Model version.
            batch: Rows in the profile's column order (array or frame); the caller must not mutate it later.

        Returns:
            Whether it was queued (False when the version is not watched or the queue is full).
        """
        with self._lock:
            if (model, version) not in self._windows:
                return False
        try:
            self._queue.put_nowait(((model, version), batch))
        except queue.Full:
            with self._lock:
                self._dropped += 1
            return False
        return True

    @property
    def dropped(self) -> int:
        """Batches dropped because the queue was full."""
        with self._lock:
            return self._dropped

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            key, batch = item
            window = self.window(*key)
            try:
                if window is not None:
                    window.update(batch)
            except Exception:  # a bad batch must not kill the drift thread
                log.exception("drift update failed for %s/%s", *key)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every queued batch has been applied."""
        self._queue.join()

    def check(self, model: str, version: str) -> tuple[DriftReport, DriftEvent | None]:
        """Report on a model version's sliding window and pass the report to the alert manager; once shared, the
        window is every process's merged (each process then alerts on the same merged figures).

        Args:
            model: Model name.
            version: Model version.

        Returns:
            The report and the event it caused, if any.

        Raises:
            KeyError: The version is not watched.
        """
        with self._lock:
            window = self._windows[(model, version)]
            policy = self._policies[(model, version)]
        report = window.report(policy) if self.merger is None else self.merger.report(window, policy)
        event = self.alerts.observe(report) if self.alerts is not None else None
        return report, event

    def close(self) -> None:
        """Apply queued batches, stop the drift thread, then save the windows a last time when shared (a rolling
        restart must not lose its last seconds of traffic)."""
        self._queue.put(None)
        self._thread.join()
        if self.merger is not None:
            try:
                self.merger.save()
            except Exception:  # a store already gone must not stop the rest of the shutdown
                log.exception("saving the drift windows at shutdown failed")
