"""brute and quick on synthetic response surfaces: quick's share of the space and of brute's best."""

from __future__ import annotations

import math

import pytest
from tests.tune.synthetic import cpu_surface, measurer

from driftline.tune.recommend import objective
from driftline.tune.search import brute, quick
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
    assert len(calls) == len(set(calls)) == len(q.measured) <= math.ceil(0.3 * len(candidates))
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
