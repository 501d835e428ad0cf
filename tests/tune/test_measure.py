"""measure_candidate end to end: the demo model on a real server, two concurrencies, short windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.repository.demo import build_demo_repository
from driftline.tune.measure import MeasureSettings, measure_candidate, prepare_target
from driftline.tune.spec import Candidate, parse_load, parse_slo

pytestmark = pytest.mark.e2e


def test_measure_candidate_on_the_demo_model(tmp_path: Path) -> None:
    build_demo_repository(tmp_path / "models")
    load = parse_load("concurrency=1,4")
    target = prepare_target(tmp_path / "models", "iris", None, load, None)
    assert target.version == 2
    settings = MeasureSettings(warmup_s=0.3, window_s=0.3, max_windows=4)
    lines: list[str] = []
    m = measure_candidate(target, Candidate(), load, parse_slo(["p99=50ms"]), settings, tmp_path / "w", lines.append)
    assert m.failed is None
    assert [p.level for p in m.points] == [1.0, 4.0]
    for point in m.points:
        assert point.rps > 0
        assert point.errors == 0
        assert 3 <= len(point.windows) <= 4
        assert 0 < point.p50_ms <= point.p99_ms
        assert point.server_cpu_ms_per_req > 0
        assert point.server_peak_rss_mib > 10
        assert point.rows_per_s == point.rps
    assert len(lines) == 2


def test_a_candidate_whose_server_fails_is_recorded(tmp_path: Path) -> None:
    build_demo_repository(tmp_path / "models")
    load = parse_load("concurrency=1")
    target = prepare_target(tmp_path / "models", "iris", 1, load, None)
    settings = MeasureSettings(warmup_s=0.3, window_s=0.3)
    m = measure_candidate(target, Candidate(device="cuda:0"), load, parse_slo(["p99=50ms"]), settings, tmp_path / "w")
    assert m.points == []
    assert m.failed is not None
    assert "cuda:0" in m.failed
