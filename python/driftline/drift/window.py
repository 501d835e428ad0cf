"""LiveWindow: a model version's live drift window, tumbling by rows or time, sliding over the last K."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from driftline import _core
from driftline.drift.detect import evaluate
from driftline.errors import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftline.drift.policy import DriftPolicy
    from driftline.drift.profile import Binning, ReferenceProfile
    from driftline.drift.report import DriftReport

__all__ = ["LiveWindow", "View", "WindowParts"]

View = Literal["current", "last", "sliding"]
# A window's index and serialized state: closed ones first (oldest first), the open one last.
WindowParts = list[tuple[int, bytes]]


class LiveWindow:
    """Feeds batches into `_core.DriftWindow`s on one reference profile.

    A window closes after `rows` rows or `seconds` seconds (whichever comes first; neither: it never
    closes). Time windows tumble at whole multiples of `seconds` on `clock` (wall-clock time by default), so
    every process's windows open and close together and windows of the same index can be merged exactly
    (drift/shared.py). Each window has an index: its time slot, or for row windows a per-process count of
    windows opened. The last `keep` closed windows are kept, so memory is bounded by (keep + 1) windows, each
    bounded by `sample_cap` sampled values per numeric feature plus fixed-size histograms. All methods
    are thread-safe: `update` holds the lock only while handing the batch to Rust (GIL released there).

    Attributes:
        profile: The reference profile.
        model: Model name (labels reports and alerts).
        version: Model version.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        *,
        model: str | None = None,
        version: str | None = None,
        rows: int | None = None,
        seconds: float | None = None,
        keep: int = 1,
        sample_cap: int = 100_000,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rows is not None and rows <= 0:
            raise DriftInputError("rows per window must be positive")
        if seconds is not None and seconds <= 0:
            raise DriftInputError("seconds per window must be positive")
        if keep < 1:
            raise DriftInputError("keep must be at least 1")
        self.profile = profile
        self.model = model
        self.version = version
        self._rows = rows
        self._seconds = seconds
        self._sample_cap = sample_cap
        self._seed = seed
        self._clock = clock
        self._lock = threading.Lock()
        self._closed: deque[tuple[int, _core.DriftWindow]] = deque(maxlen=keep)
        self._windows_opened = 0
        self._current = self._fresh()
        self._index = self._slot()

    def _fresh(self) -> _core.DriftWindow:
        # A distinct seed per window keeps reservoirs of consecutive windows independent.
        self._windows_opened += 1
        return _core.DriftWindow(self.profile.core, self._sample_cap, self._seed + self._windows_opened)

    def _slot(self) -> int:
        """The open window's index: the clock's time slot, or (row windows) the count of windows opened."""
        if self._seconds is None:
            return self._windows_opened - 1
        return math.floor(self._clock() / self._seconds)

    def _due(self) -> bool:
        return self._seconds is not None and self._slot() != self._index

    def _roll(self) -> None:
        self._closed.append((self._index, self._current))
        self._current = self._fresh()
        self._index = self._slot()

    @property
    def windows_closed(self) -> int:
        """Windows closed so far (tumbles)."""
        with self._lock:
            return self._windows_opened - 1

    @property
    def n_rows(self) -> int:
        """Rows in the open window."""
        with self._lock:
            return int(self._current.n_rows)

    def update(self, batch: Any) -> None:
        """Add a batch of rows.

        Args:
            batch: A frame, mapping, or (rows, features) numpy array in the profile's column order. Row-count
                windows split a batch at the boundary, so every closed window has exactly `rows` rows.

        Raises:
            DriftInputError: The batch does not match the profile's features.
        """
        encoded = self.profile.encode(batch)
        with self._lock:
            if self._due():
                self._roll()
            if self._rows is None:
                self._current.update(encoded)
                return
            start = 0
            while start < encoded.shape[0]:
                room = self._rows - int(self._current.n_rows)
                chunk = encoded[start : start + room]
                self._current.update(chunk)
                start += chunk.shape[0]
                if int(self._current.n_rows) >= self._rows:
                    self._roll()

    def tick(self) -> bool:
        """Close the open window when its time is up (call from a timer when traffic may stop).

        Returns:
            Whether a window was closed.
        """
        with self._lock:
            if self._due():
                self._roll()
                return True
            return False

    @property
    def settings(self) -> tuple[int | None, float | None, int, int]:
        """(rows, seconds, keep, sample_cap): windows with other settings do not merge with these."""
        return self._rows, self._seconds, self._closed.maxlen or 1, self._sample_cap

    def slot(self) -> int:
        """The index a window opened now would have (time windows: the clock's slot)."""
        with self._lock:
            return self._slot() if self._seconds is not None else self._index

    def parts(self) -> tuple[int, WindowParts, int]:
        """Every kept window serialized, consistently (one lock), for saving.

        Returns:
            (windows closed so far, [(index, bytes)] with the kept closed windows oldest first and the open one
            last, the rows in them).
        """
        with self._lock:
            kept = [*self._closed, (self._index, self._current)]
            rows = sum(int(w.n_rows) for _, w in kept)
            return self._windows_opened - 1, [(i, w.to_bytes()) for i, w in kept], rows

    def snapshot(self, view: View = "sliding") -> _core.DriftWindow:
        """A window to compare: a merged copy, so later updates do not change it.

        Args:
            view: "current" (the open window), "last" (the last closed one, or the open one before any
                closed), "sliding" (the last `keep` closed windows plus the open one, merged).

        Returns:
            A new `_core.DriftWindow`.
        """
        out = _core.DriftWindow(self.profile.core, self._sample_cap, self._seed)
        with self._lock:
            if view == "current":
                parts = [self._current]
            elif view == "last":
                parts = [self._closed[-1][1] if self._closed else self._current]
            else:
                parts = [*(w for _, w in self._closed), self._current]
            for part in parts:
                out.merge(part)
        return out

    def report(
        self, policy: DriftPolicy | None = None, *, view: View = "sliding", binning: Binning = "quantile"
    ) -> DriftReport:
        """Judge a view of the window against the profile.

        Args:
            policy: The policy (default DriftPolicy()).
            view: Which rows (see snapshot).
            binning: "quantile" or "evidently".

        Returns:
            The report, labelled with this window's model and version.
        """
        return evaluate(
            self.profile, self.snapshot(view), policy, binning=binning, model=self.model, version=self.version
        )

    def reset(self) -> None:
        """Drop every window and start afresh."""
        with self._lock:
            self._closed.clear()
            self._current.reset()
            self._index = self._slot()
