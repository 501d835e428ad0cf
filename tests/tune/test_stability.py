"""perf_analyzer's stability rule and the pooling of windows into a point, on synthetic windows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from driftline.tune.measure import is_stable, pool, to_window
from driftline.tune.spec import Window


def _w(rps: float, p99: float, *, gen: float = 0.2, backlog: int = 0) -> Window:
    return Window(1.0, int(rps), 0, rps, p99 / 2, p99 * 0.8, p99 * 0.9, p99, generator_cpu=gen, backlog=backlog)


def test_stable_when_the_last_three_agree() -> None:
    windows = [_w(500, 20), _w(1000, 10), _w(1020, 10.5), _w(990, 9.8)]
    assert is_stable(windows, "p99", 0.10)


def test_unstable_throughput() -> None:
    assert not is_stable([_w(1000, 10), _w(1300, 10), _w(900, 10)], "p99", 0.10)


def test_unstable_p99() -> None:
    assert not is_stable([_w(1000, 10), _w(1000, 14), _w(1000, 9)], "p99", 0.10)
    # The percentile the SLO names is the one that counts.
    assert is_stable([_w(1000, 10), _w(1000, 14), _w(1000, 9)], "p99", 0.50)


def test_fewer_than_three_windows_are_not_stable() -> None:
    assert not is_stable([_w(1000, 10), _w(1000, 10)], "p99", 0.10)


def _pool(windows: list[Window], **kw: object) -> object:
    args = {"level": 8.0, "percentile": "p99", "tolerance": 0.10, "rows_per_request": 4.0, "server_cpu_s": 1.5}
    args |= {"server_peak_rss_mib": 100.0, "generator_threads": 2, **kw}
    return pool(windows, **args)  # type: ignore[arg-type]


def test_pool_takes_the_last_three_when_stable() -> None:
    windows = [_w(100, 50), _w(1000, 10), _w(1000, 10), _w(1000, 10)]
    point = _pool(windows)
    assert point.stable
    assert point.rps == 1000
    assert point.requests == 3000
    assert point.rows_per_s == 4000
    assert point.p99_ms == 10
    assert point.server_cpu_ms_per_req == 0.5
    assert len(point.windows) == 4
    assert not point.generator_limited  # type: ignore[attr-defined]


def test_pool_takes_every_window_when_unstable() -> None:
    point = _pool([_w(1000, 10), _w(2000, 10), _w(3000, 10)])
    assert not point.stable
    assert point.requests == 6000
    assert point.rps == 2000


def test_generator_limited_by_its_cpu_or_a_growing_backlog() -> None:
    assert _pool([_w(1000, 10, gen=1.9)] * 3).generator_limited  # type: ignore[attr-defined]
    grew = [_w(1000, 10, gen=1.2, backlog=b) for b in (0, 50, 100)]
    assert _pool(grew, offered_rps=2000.0, server_cpu_s=0.1).generator_limited  # type: ignore[attr-defined]
    # The same backlog with a busy server, or with an idle generator: the server is the limit.
    idle = [_w(1000, 10, gen=0.6, backlog=b) for b in (0, 50, 100)]
    assert not _pool(idle, offered_rps=2000.0, server_cpu_s=0.1).generator_limited  # type: ignore[attr-defined]
    assert not _pool(grew, offered_rps=2000.0, server_cpu_s=3.0).generator_limited  # type: ignore[attr-defined]


def test_to_window_percentiles() -> None:
    raw = SimpleNamespace(
        seconds=2.0,
        latencies_us=np.arange(1, 1001, dtype=np.uint32) * 10,
        errors=1,
        sent=1001,
        backlog=3,
        generator_cpu_s=0.5,
        threads=2,
    )
    w = to_window(raw)
    assert w.requests == 1000
    assert w.rps == 500
    assert w.errors == 1
    assert w.backlog == 3
    assert abs(w.p50_ms - 5.005) < 1e-6
    assert w.p99_ms > 9.8
    assert w.generator_cpu == 0.25
