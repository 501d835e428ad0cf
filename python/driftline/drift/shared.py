"""SharedWindows: this process's live windows saved to the store, and every process's merged into one report.

Each process (worker or replica) saves the kept windows of every watched version under its own id; a report reads
the rows of every process saved within `retain_s`, keeps those on the same reference profile and window settings,
and merges the windows its view selects (see `select`) with `_core.DriftWindow.merge`, which is exact for counts
and histograms, and exact for samples while the merged window holds no more than `sample_cap` values per feature.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from driftline import _core
from driftline.drift.detect import evaluate
from driftline.drift.recode import recode_window
from driftline.errors import DriftInputError
from driftline.store.drift_windows import SavedWindow

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from driftline.drift.monitor import DriftMonitor
    from driftline.drift.policy import DriftPolicy
    from driftline.drift.profile import Binning, ReferenceProfile
    from driftline.drift.report import DriftReport
    from driftline.drift.window import LiveWindow, View, WindowParts
    from driftline.store.drift_windows import DriftWindowStore

__all__ = ["SharedWindows", "WindowState", "decode_state", "encode_state", "merge_states", "select"]

_log = logging.getLogger("driftline.drift")
_MAGIC = b"DLWSTv1\n"
_LEN = struct.Struct("<I")


class _Header(msgspec.Struct, frozen=True):
    profile: str  # the reference profile's sha256: windows on another reference never merge
    rows: int | None
    seconds: float | None
    keep: int
    sample_cap: int
    closed: int  # windows this process closed so far
    index: list[int]  # each window's index, the open one last
    size: list[int]  # each window's byte length, in the same order
    # Per string feature, the codes this process gave strings its reference never saw (string -> code).
    strings: dict[int, dict[str, float]] = {}


@dataclass(frozen=True, slots=True)
class WindowState:
    """One process's windows of one version, decoded.

    Attributes:
        closed: Windows the process closed so far.
        windows: (index, window), the kept closed windows oldest first, the open one last.
    """

    closed: int
    windows: list[tuple[int, _core.DriftWindow]]


def encode_state(window: LiveWindow) -> tuple[bytes, int]:
    """Serialize a live window's kept windows: magic, header length (u32 LE), header JSON, the windows' bytes.

    Args:
        window: The live window.

    Returns:
        (state, rows in it).
    """
    closed, parts, rows = window.parts()
    return _encode(window, closed, parts), rows


def _encode(window: LiveWindow, closed: int, parts: WindowParts) -> bytes:
    rows, seconds, keep, cap = window.settings
    encoder = window.profile.encoder
    # Read after the windows: codes never change, so every code in them is named (a superset does no harm).
    strings = {
        j: {s: c for c, s in new.items()} for j in range(len(window.profile.names)) if (new := encoder.new_strings(j))
    }
    header = _Header(
        window.profile.digest,
        rows,
        seconds,
        keep,
        cap,
        closed,
        [i for i, _ in parts],
        [len(d) for _, d in parts],
        strings,
    )
    meta = msgspec.json.encode(header)
    return b"".join([_MAGIC, _LEN.pack(len(meta)), meta, *(d for _, d in parts)])


def decode_state(window: LiveWindow, data: bytes) -> WindowState | None:
    """Read a state saved by `encode_state` for merging with `window`.

    Args:
        window: This process's live window of the same version (its profile and settings must match).
        data: The saved state.

    Returns:
        The state, or None when it was built on another reference profile or other window settings.

    Raises:
        DriftInputError: Damaged data.
    """
    head = len(_MAGIC) + _LEN.size
    if len(data) < head or not data.startswith(_MAGIC):
        raise DriftInputError("not a saved drift window state (bad magic)")
    (size,) = _LEN.unpack(data[len(_MAGIC) : head])
    try:
        header = msgspec.json.decode(data[head : head + size], type=_Header)
    except msgspec.DecodeError as exc:
        raise DriftInputError(f"damaged drift window state: {exc}") from exc
    rows, seconds, keep, cap = window.settings
    if header.profile != window.profile.digest or (header.rows, header.seconds, header.keep, header.sample_cap) != (
        rows,
        seconds,
        keep,
        cap,
    ):
        return None
    if len(header.index) != len(header.size) or head + size + sum(header.size) != len(data):
        raise DriftInputError("damaged drift window state: sizes do not add up")
    codes = _local_codes(window.profile, header.strings)
    windows, at = [], head + size
    for index, n in zip(header.index, header.size, strict=True):
        windows.append(
            (index, _core.DriftWindow.from_bytes(window.profile.core, recode_window(data[at : at + n], codes)))
        )
        at += n
    return WindowState(header.closed, windows)


def _local_codes(profile: ReferenceProfile, strings: dict[int, dict[str, float]]) -> dict[int, dict[float, float]]:
    """Another process's code -> this process's code for the same string, where they differ (new strings get codes
    here as this process's encoder would give them, so the report labels them)."""
    out: dict[int, dict[float, float]] = {}
    for j, theirs in strings.items():
        if not 0 <= j < len(profile.names) or profile.schema.columns[j].vocabulary is None:
            raise DriftInputError(f"damaged drift window state: feature {j} has no strings")
        names = list(theirs)
        ours = profile.encoder.codes_of(j, names)
        if moved := {theirs[s]: c for s, c in zip(names, ours, strict=True) if theirs[s] != c}:
            out[j] = moved
    return out


def select(states: Sequence[WindowState], view: View, now: int | None, keep: int) -> list[list[_core.DriftWindow]]:
    """The windows a view takes from every process, one list per process.

    Time windows (``now`` is the open slot; slots are shared by every process): "current" is every window of slot
    ``now``, "last" every window of slot ``now - 1`` (the open windows, before any window anywhere closed), and
    "sliding" every window of the last ``keep`` slots and the open one. Row windows have no shared index: each
    process gives its own open window, its own last closed one (its open one before it closed any), or all it
    keeps.

    Args:
        states: Every process's state.
        view: "current", "last" or "sliding".
        now: The open time slot, or None for row windows.
        keep: Closed windows a view spans.

    Returns:
        The windows to merge, per process.
    """
    if now is None:
        if view == "current":
            return [[s.windows[-1][1]] for s in states]
        if view == "last":
            return [[(s.windows[-2] if len(s.windows) > 1 else s.windows[-1])[1]] for s in states]
        return [[w for _, w in s.windows] for s in states]
    if view == "current":
        lo = hi = now
    elif view == "last":
        lo = hi = now - 1 if any(i < now for s in states for i, _ in s.windows) else now
    else:
        lo, hi = now - keep, now
    return [[w for i, w in s.windows if lo <= i <= hi] for s in states]


def merge_states(window: LiveWindow, states: Sequence[WindowState], view: View = "sliding") -> _core.DriftWindow:
    """Merge every process's windows that a view takes into one window.

    Args:
        window: This process's live window of the version (profile, settings and clock).
        states: Every process's state, this one's included.
        view: Which windows (see `select`).

    Returns:
        A new `_core.DriftWindow`.
    """
    _, seconds, keep, cap = window.settings
    out = _core.DriftWindow(window.profile.core, cap, 0)
    # Each process's windows first: they rarely fill a reservoir, so they merge by appending; drawing a sample of
    # the union (every merge once `sample_cap` is passed) then happens once per process, not once per window.
    for n, group in enumerate(select(states, view, window.slot() if seconds is not None else None, keep), 1):
        part = _core.DriftWindow(window.profile.core, cap, n)
        for w in group:
            part.merge(w)
        out.merge(part)
    return out


class SharedWindows:
    """Saves this process's windows every few seconds and merges every process's into reports.

    Attributes:
        process: This process's id (the one its traffic counts are saved under).
        retain_s: Rows not saved for this long are left out of reports and deleted (a process that stopped:
            shut down, restarted under a new id, or died); a live process refreshes its rows at every save.
    """

    def __init__(
        self,
        monitor: DriftMonitor,
        store: DriftWindowStore,
        process: str,
        *,
        retain_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.monitor = monitor
        self.store = store
        self.process = process
        self.retain_s = retain_s
        self._clock = clock
        # What each version's saved state was made from, and when its row was last written: an unchanged window is
        # not rewritten, only marked fresh now and then (SQLite rewrites the whole row, blob included, on UPDATE).
        self._saved: dict[tuple[str, str], tuple[tuple[int, int, int], int]] = {}
        # The periodic save, a report's save and the shutdown save may run on different threads at once.
        self._save_lock = threading.Lock()
        self._pruned_us = 0  # when rows older than retain_s were last deleted (a scan past every row's blob)

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    def save(self, only: tuple[str, str] | None = None) -> int:
        """Save the windows of every watched version (or of one) that changed since the last save; mark the
        others fresh once a quarter of `retain_s` went by, and delete rows older than `retain_s`.

        Args:
            only: (model, version) to save just that one (before a report).

        Returns:
            How many states were written.
        """
        with self._save_lock:
            return self._save(only)

    def _save(self, only: tuple[str, str] | None) -> int:
        now = self._now_us()
        retain_us = int(self.retain_s * 1_000_000)
        changed: list[SavedWindow] = []
        same: list[tuple[str, int]] = []
        marks: dict[tuple[str, str], tuple[tuple[int, int, int], int]] = {}
        watched = self.monitor.windows()
        for key, window in watched.items() if only is None else [(only, watched[only])]:
            marker = (id(window), window.windows_closed, window.n_rows)
            last, written = self._saved.get(key, (None, 0))
            if last == marker:
                if now - written >= retain_us // 4:
                    same.append((key[0], int(key[1])))
                    marks[key] = (marker, now)
                continue
            state, rows = encode_state(window)
            changed.append(SavedWindow(self.process, key[0], int(key[1]), state, rows, now))
            marks[key] = (marker, now)
        self.store.save(changed)
        self.store.touch(self.process, same, now)
        self._saved.update(marks)  # only once written: a failed save is tried again next time
        if only is None:
            self._saved = {k: v for k, v in self._saved.items() if k in watched}
        if only is None and now - self._pruned_us >= retain_us // 4:
            self.store.delete_before(now - retain_us)
            self._pruned_us = now
        return len(changed)

    def states(self, model: str, version: str, window: LiveWindow) -> list[WindowState]:
        """Every process's fresh state of a version that merges with ``window`` (this process's saved first).

        Args:
            model: Model name.
            version: Model version.
            window: This process's live window of it.

        Returns:
            The decoded states, by process id.
        """
        self.save((model, version))
        fresh_after = self._now_us() - int(self.retain_s * 1_000_000)
        out = []
        for row in self.store.read(model, int(version), fresh_after):
            try:
                state = decode_state(window, row.state)
            except DriftInputError as exc:
                _log.warning("drift window of process %s for %s/%s skipped: %s", row.process, model, version, exc)
                continue
            if state is None:
                _log.debug("drift window of process %s for %s/%s is on another profile", row.process, model, version)
                continue
            out.append(state)
        return out

    def report(
        self,
        window: LiveWindow,
        policy: DriftPolicy | None = None,
        *,
        view: View = "sliding",
        binning: Binning = "quantile",
    ) -> DriftReport:
        """The report on every process's windows of the window's version, merged.

        Args:
            window: This process's live window (labelled with its model and version).
            policy: The policy (default DriftPolicy()).
            view: Which windows (see `select`).
            binning: "quantile" or "evidently".

        Returns:
            The report, as one process given all of the traffic would give it (see docs/drift.md).
        """
        if window.model is None or window.version is None:
            raise DriftInputError("a shared drift report needs a window labelled with its model and version")
        states = self.states(window.model, window.version, window)
        merged = merge_states(window, states, view)
        profile: ReferenceProfile = window.profile
        return evaluate(profile, merged, policy, binning=binning, model=window.model, version=window.version)
