"""Which candidates to measure: ``brute`` measures them all; ``quick`` measures a fraction.

``quick`` is coordinate descent from the model's current configuration. Each pass goes knob by knob (device
first, as it dominates, then max_batch_size, instances, threads, workers, the queue delay, the preferred sizes):
it measures every value of that knob with the others held at the best configuration so far and keeps the best.
Passes repeat until one finds nothing better. If budget is left, pairs of knobs are changed together around the
best, nearest values first: that is where interactions hide (instances x threads x workers against the cores).
Why this and not successive halving: every measurement here is a full, stable one (a candidate's numbers do not
get better with a longer look), so halving has nothing to halve, while driftline's knobs are nearly separable
one at a time (batching, parallelism, device) and a descent from the current config climbs the surface in a few
measurements per knob. On the synthetic surfaces of tests/tune/test_search.py it reaches >= 90% of brute's best
measuring at most 30% of the space. Measured candidates are remembered, so none is measured twice, and at most
``floor(max_fraction x points)`` are measured (a space of at most `SMALL_SPACE` points is measured whole).
While nothing measured meets the SLO, the descent follows the candidate that came closest to it (``shortfall``):
on a real server a knob's better value can miss narrowly where the start misses widely (measured: a two-worker
candidate 0.4 ms over the limit, treated as no better than the one-worker start, sent a run past the region
where the best configuration was).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any, Final

import msgspec

from driftline.tune.space import normalize
from driftline.tune.spec import Candidate, Measurement

__all__ = ["Measure", "Objective", "Progress", "SearchOutcome", "Shortfall", "brute", "quick", "quick_cap"]

Measure = Callable[[Candidate], Measurement]
#: A measurement's objective, higher is better; None: the candidate does not meet the SLO.
Objective = Callable[[Measurement], "float | None"]
#: How far a measurement that misses the SLO is from it (0: meets it; inf: nothing usable).
Shortfall = Callable[[Measurement], float]
Progress = Callable[[int, int, Measurement], None]

#: Spaces up to this size are measured whole by quick too.
SMALL_SPACE: Final = 8

#: The order quick's passes visit the knobs in: the ones that move throughput most first.
ORDER: Final = (
    "device",
    "max_batch_size",
    "instances",
    "threads",
    "workers",
    "max_queue_delay_us",
    "preferred_batch_sizes",
)


class SearchOutcome(msgspec.Struct):
    """What a search measured, out of how many points, and whether the deadline stopped it."""

    measured: list[Measurement]
    points_in_space: int
    skipped: int
    exhausted_budget: bool


def brute(
    candidates: list[Candidate],
    measure: Measure,
    objective: Objective,
    deadline: float,
    progress: Progress | None = None,
) -> SearchOutcome:
    """Every candidate in order until ``time.monotonic() >= deadline``."""
    del objective  # brute needs no guide; taken so both searches are called alike
    measured: list[Measurement] = []
    for candidate in candidates:
        if time.monotonic() >= deadline:
            break
        measured.append(measure(candidate))
        if progress is not None:
            progress(len(measured), len(candidates), measured[-1])
    return SearchOutcome(measured, len(candidates), len(candidates) - len(measured), len(measured) < len(candidates))


class _Descent:
    """Quick's state: what was measured, the best so far, and the budget."""

    def __init__(
        self, candidates: list[Candidate], measure: Measure, objective: Objective, shortfall: Shortfall | None, cap: int
    ) -> None:
        self.valid = set(candidates)
        self.measure, self.objective, self.shortfall, self.cap = measure, objective, shortfall, cap
        #: (1, objective) for a candidate that meets the SLO, (0, -shortfall) for one that misses: any that meets
        #: beats any that misses, and among misses the closest leads.
        self.scores: dict[Candidate, tuple[int, float]] = {}
        self.measured: list[Measurement] = []
        self.best: Candidate | None = None
        #: The full knob values of the best (un-collapsed: batching-off keeps the delay it would be tried with).
        self.anchor: dict[str, Any] = {}

    def room(self) -> bool:
        return len(self.measured) < self.cap

    def score(self, candidate: Candidate) -> tuple[int, float]:
        return self.scores.get(candidate, (-1, 0.0))

    def visit(self, values: dict[str, Any], deadline: float, progress: Progress | None) -> bool:
        """Measure the candidate ``values`` mean (unless done or invalid); True when it became the best."""
        candidate = normalize(values)
        if candidate in self.scores or candidate not in self.valid or not self.room():
            return False
        if time.monotonic() >= deadline:
            return False
        m = self.measure(candidate)
        self.measured.append(m)
        value = self.objective(m)
        if value is not None:
            self.scores[candidate] = (1, value)
        else:
            self.scores[candidate] = (0, -self.shortfall(m) if self.shortfall is not None else 0.0)
        if progress is not None:
            progress(len(self.measured), self.cap, m)
        if self.best is None or self.scores[candidate] > self.score(self.best):
            self.best, self.anchor = candidate, dict(values)
            return True
        return False


def _nearest(space_values: list[Any], current: Any) -> list[Any]:
    """``space_values`` nearest to ``current`` first (by position), for a stable, local order."""
    at = space_values.index(current) if current in space_values else 0
    return sorted(space_values, key=lambda v: (abs(space_values.index(v) - at), space_values.index(v)))


def _start_values(start: Candidate, space: dict[str, list[Any]], candidates: list[Candidate]) -> dict[str, Any]:
    """``start``'s values, or the nearest candidate's when it is not in the space (knob by knob, then the first)."""
    values = start.values()
    if normalize(values) in set(candidates):
        return values
    moved = {k: (v if v in space.get(k, [v]) else space[k][0]) for k, v in values.items()}
    return moved if normalize(moved) in set(candidates) else candidates[0].values()


def quick_cap(points: int, max_fraction: float = 0.30) -> int:
    """How many of ``points`` candidates quick measures at most: ``max_fraction`` of them, rounded down (the start
    included), or all of a space of at most `SMALL_SPACE` points (30% of it would be the starting point alone)."""
    if points <= SMALL_SPACE:
        return points
    return max(1, math.floor(max_fraction * points + 1e-9))


def quick(
    space: dict[str, list[Any]],
    candidates: list[Candidate],
    start: Candidate,
    measure: Measure,
    objective: Objective,
    deadline: float,
    max_fraction: float = 0.30,
    progress: Progress | None = None,
    shortfall: Shortfall | None = None,
) -> SearchOutcome:
    """Coordinate descent from ``start`` over ``candidates`` (see the module docstring), measuring at most
    :func:`quick_cap` of them and none twice; ``shortfall`` guides it while nothing meets the SLO."""
    if not candidates:
        return SearchOutcome([], 0, 0, False)
    state = _Descent(candidates, measure, objective, shortfall, quick_cap(len(candidates), max_fraction))
    axes = {k: [list(v) if isinstance(v, tuple) else v for v in space.get(k, [])] for k in ORDER}
    axes = {k: v for k, v in axes.items() if len(v) > 1}
    state.visit(_start_values(start, space, candidates), deadline, progress)
    improved = True
    while improved and state.room() and time.monotonic() < deadline:
        improved = False
        for knob, values in axes.items():
            for value in _nearest(values, state.anchor[knob]):
                improved |= state.visit({**state.anchor, knob: value}, deadline, progress)
    for (k1, v1s), (k2, v2s) in itertools.combinations(axes.items(), 2):
        if not state.room() or time.monotonic() >= deadline:
            break
        anchor = dict(state.anchor)
        pairs = itertools.product(_nearest(v1s, anchor[k1])[1:3], _nearest(v2s, anchor[k2])[1:3])
        for a, b in pairs:
            state.visit({**anchor, k1: a, k2: b}, deadline, progress)
    exhausted = time.monotonic() >= deadline
    return SearchOutcome(state.measured, len(candidates), len(candidates) - len(state.measured), exhausted)
