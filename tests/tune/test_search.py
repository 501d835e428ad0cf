"""brute and quick on synthetic response surfaces: quick's share of the space and of brute's best."""

from __future__ import annotations

import math

import pytest
from tests.tune.synthetic import cpu_surface, measurer

from driftline.tune.recommend import objective, shortfall
from driftline.tune.search import brute, quick, quick_cap
from driftline.tune.space import default_space, expand, parse_space
from driftline.tune.spec import Candidate, Load, Measurement, Slo

LOAD = Load("concurrency", (1.0, 8.0, 32.0, 64.0))


def _best(measured: list[Measurement], slo: Slo) -> float:
    return max(v for m in measured if (v := objective(m, slo, LOAD)) is not None)


@pytest.mark.parametrize(
    ("cores", "extra", "limit"),
    [(2, [], 5.0), (2, [], 2.0), (4, ["max_batch_size=0,4,8,16,32"], 5.0), (2, ["instances=1,2,3,4"], 4.0)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_quick_reaches_brute(cores: int, extra: list[str], limit: float, seed: int) -> None:
    space = parse_space(extra, default_space(Candidate(), "onnx", cores))
    candidates, _ = expand(space, "onnx")
    assert len(candidates) >= 24
    slo = Slo("p99", limit, None)
    measure = measurer(cpu_surface(cores), LOAD.levels, seed)
    calls: list[Candidate] = []

    def counted(c: Candidate) -> Measurement:
        calls.append(c)
        return measure(c)

    b = brute(candidates, measure, lambda m: objective(m, slo, LOAD), math.inf)
    q = quick(space, candidates, Candidate(), counted, lambda m: objective(m, slo, LOAD), math.inf)
    assert len(calls) == len(set(calls)) == len(q.measured) <= quick_cap(len(candidates)) <= 0.3 * len(candidates)
    assert q.points_in_space == len(candidates)
    assert q.skipped == len(candidates) - len(calls)
    assert _best(q.measured, slo) >= 0.9 * _best(b.measured, slo)
    again = quick(space, candidates, Candidate(), measure, lambda m: objective(m, slo, LOAD), math.inf)
    assert [m.candidate for m in again.measured] == calls  # deterministic


def test_brute_stops_at_the_deadline_and_reports_progress() -> None:
    space = default_space(Candidate(), "onnx", 2)
    candidates, _ = expand(space, "onnx")
    seen: list[tuple[int, int]] = []
    b = brute(
        candidates, measurer(cpu_surface(), LOAD.levels), lambda m: 1.0, math.inf, lambda d, t, m: seen.append((d, t))
    )
    assert [c.candidate for c in b.measured] == candidates
    assert not b.exhausted_budget
    assert seen[-1] == (len(candidates), len(candidates))
    late = brute(candidates, measurer(cpu_surface(), LOAD.levels), lambda m: 1.0, 0.0)
    assert late.measured == []
    assert late.exhausted_budget
    assert late.skipped == len(candidates)
    assert (
        quick(space, candidates, Candidate(), measurer(cpu_surface(), LOAD.levels), lambda m: 1.0, 0.0).measured == []
    )


def test_quick_starts_from_a_start_outside_the_space() -> None:
    space = parse_space(["instances=2,3"], default_space(Candidate(), "onnx", 2))
    candidates, _ = expand(space, "onnx")
    q = quick(space, candidates, Candidate(instances=1), measurer(cpu_surface(), LOAD.levels), lambda m: None, math.inf)
    assert q.measured
    assert all(m.candidate in candidates for m in q.measured)


def test_the_cap_rounds_down() -> None:
    assert quick_cap(24) == 7  # 30% of 24 is 7.2: the eighth point would be 33%
    assert quick_cap(10) == 3
    assert quick_cap(8) == 8  # small spaces are measured whole
    assert quick_cap(9) == 2


def test_quick_follows_the_closest_miss_until_something_meets() -> None:
    # Measured on a real server: the start misses by far, a second worker misses narrowly, and only two workers
    # with no queue delay meet the SLO. Treating every miss alike, the descent keeps the start and measures its other
    # neighbours first; following the closest miss it reaches the one configuration that meets.
    space = parse_space(
        ["max_batch_size=8,32,64", "max_queue_delay_us=0,1000", "instances=1,2", "workers=1,2"],
        {"threads": [1], "preferred_batch_sizes": [()], "device": ["cpu"]},
    )
    candidates, _ = expand(space, "onnx")
    assert len(candidates) == 24
    start = Candidate(max_batch_size=32, max_queue_delay_us=1000, instances=1, workers=1)

    def surface(c: Candidate, level: float) -> tuple[float, float]:
        rps = 10_000.0 * (1.35 if c.workers == 2 else 1.0) * (1.1 if c.max_queue_delay_us == 0 else 1.0)
        rps *= 0.9 if c.max_batch_size != 32 else 1.0
        rps *= 0.7 if c.instances == 2 else 1.0
        return rps, 10.0

    slo = Slo("p99", 15.0, 14_000.0)
    measure = measurer(surface, (64.0,), noise=0.0)
    best = _best(brute(candidates, measure, lambda m: objective(m, slo, LOAD), math.inf).measured, slo)
    guided = quick(
        space,
        candidates,
        start,
        measure,
        lambda m: objective(m, slo, LOAD),
        math.inf,
        shortfall=lambda m: shortfall(m, slo, LOAD),
    )
    assert len(guided.measured) <= 7
    assert _best(guided.measured, slo) == best
