"""The recommendation: the SLO's point, the objective, the ranking, the margin and the patch."""

from __future__ import annotations

import tomllib

import msgspec
from tests.tune.synthetic import point

from driftline.repository.model_config import ModelConfig
from driftline.tune.recommend import best_point, margin_ms, objective, patch_toml, rank, serve_flags, stability_notes
from driftline.tune.spec import Candidate, Load, Measurement, Slo

CLOSED = Load("concurrency", (1.0, 8.0, 32.0))


def _m(c: Candidate, *points: object, failed: str | None = None) -> Measurement:
    return Measurement(c, list(points), failed=failed)  # type: ignore[arg-type]


def test_latency_limit_takes_the_fastest_point_within_it() -> None:
    m = _m(Candidate(), point(1, 100, 2.0), point(8, 500, 8.0), point(32, 900, 30.0), point(64, 950, 9.0, errors=1))
    slo = Slo("p99", 10.0, None)
    assert best_point(m, slo, CLOSED) == m.points[1]
    assert objective(m, slo, CLOSED) == 500
    assert margin_ms(m.points[1], slo) == 2.0
    assert objective(m, Slo("p99", 10.0, 600.0), CLOSED) is None
    assert objective(m, Slo("p99", 1.0, None), CLOSED) is None
    limited = _m(Candidate(), point(8, 800, 5.0, generator_limited=True))
    assert objective(limited, slo, CLOSED) is None


def test_floor_alone_takes_the_lowest_p99_negated() -> None:
    m = _m(Candidate(), point(1, 100, 2.0), point(8, 500, 8.0), point(32, 900, 30.0))
    assert objective(m, Slo(None, None, 400.0), CLOSED) == -8.0
    assert margin_ms(m.points[1], Slo(None, None, 400.0)) is None


def test_open_loop_points_must_keep_up_with_the_offered_rate() -> None:
    load = Load("rate", (500.0, 1000.0))
    m = _m(Candidate(), point(500, 499, 3.0, offered_rps=500.0), point(1000, 900, 4.0, offered_rps=1000.0))
    assert objective(m, Slo("p99", 10.0, None), load) == 499


def test_rank_meeting_then_closest_then_failed() -> None:
    slo = Slo("p99", 10.0, None)
    fast = _m(Candidate(instances=2), point(8, 800, 9.0))
    slow = _m(Candidate(), point(8, 300, 5.0))
    near = _m(Candidate(threads=2), point(8, 900, 11.0))
    far = _m(Candidate(workers=2), point(8, 900, 40.0))
    broken = _m(Candidate(device="cuda:0"), failed="server did not start")
    assert rank([broken, far, slow, near, fast], slo, CLOSED) == [fast, slow, near, far, broken]


def test_patch_loads_as_the_candidate_and_flags() -> None:
    c = Candidate(max_batch_size=16, preferred_batch_sizes=(4, 8), instances=2, threads=2, workers=2)
    text = patch_toml(c, "onnx")
    assert text.startswith("# driftline tune: ")
    config = msgspec.convert(tomllib.loads(text), ModelConfig)
    assert (config.max_batch_size, config.instances, config.onnx.intra_op_threads) == (16, 2, 2)
    assert config.batching.preferred_batch_sizes == [4, 8]
    assert msgspec.convert(tomllib.loads(patch_toml(c, "torch")), ModelConfig).torch.threads == 2
    assert serve_flags(c) == ["--workers", "2"]
    assert serve_flags(Candidate()) == []


def test_unstable_recommendation_gets_a_note() -> None:
    slo = Slo("p99", 10.0, None)
    shaky = _m(Candidate(), point(8, 800, 9.0, stable=False))
    assert "unstable" in stability_notes(shaky, slo, CLOSED)[0]
    assert stability_notes(_m(Candidate(), point(8, 800, 9.0)), slo, CLOSED) == []
