"""Measuring one candidate: warm up, then windows until stable (perf_analyzer's rule), pooled into a `Point`.

``generator_limited`` (the generator, not the server, was the limit) is true when the generator's CPU per wall
second reached 0.9 x its thread count (its threads never waited on the server), or, open loop, when the backlog
grew over the measured windows while the generator was at least half busy (0.5 x its threads) and the server's CPU
stayed below half of what it could use (0.5 x its workers). A growing backlog alone is no evidence: measured on
the demo model at 3000 req/s offered (2 shared cores), the backlog grew with the generator at 0.57 of 2 threads and
the server at 0.5 cores, its queue the limit (the same server answers 3.9k req/s closed loop at c=64), so the
generator's own CPU has to show it was the one that fell behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np

from driftline import _core
from driftline.errors import ConfigError, DriftlineError
from driftline.repository import Repository
from driftline.tune.bodies import request_bodies
from driftline.tune.server import TunedServer
from driftline.tune.spec import Measurement, Point, Window

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from driftline.tune.spec import Candidate, Load, Percentile, Slo
    from driftline.tune.trace import Trace

__all__ = ["MeasureSettings", "Target", "is_stable", "measure_candidate", "pool", "prepare_target", "to_window"]

#: The generator is the limit once its threads are this busy (of one core each).
GENERATOR_BUSY: Final = 0.9


class MeasureSettings(msgspec.Struct, frozen=True):
    """How long to warm up and measure; how stable is stable."""

    warmup_s: float = 2.0
    window_s: float = 1.0
    min_windows: int = 3
    max_windows: int = 10
    tolerance: float = 0.10
    open_connections: int = 128
    threads: int = 0


def to_window(w: Any) -> Window:
    """A `LoadWindow` as a `Window`: its latencies as percentiles (ms), the generator's CPU per wall second."""
    seconds = max(float(w.seconds), 1e-9)
    lat = np.asarray(w.latencies_us, dtype=np.float64)
    # Past ~10M latencies a window counts answers without storing them: they count as requests all the same.
    answered = int(lat.size) + int(getattr(w, "unstored", 0))
    p50, p90, p95, p99 = (np.percentile(lat, [50, 90, 95, 99]) / 1000).tolist() if lat.size else [0.0] * 4
    return Window(
        seconds=seconds,
        requests=answered,
        errors=int(w.errors),
        rps=answered / seconds,
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        generator_cpu=float(w.generator_cpu_s) / seconds,
        backlog=int(w.backlog),
    )


def _within(values: list[float], tolerance: float) -> bool:
    mean = sum(values) / len(values)
    return mean > 0 and all(abs(v - mean) <= tolerance * mean for v in values)


def is_stable(windows: list[Window], percentile: Percentile, tolerance: float, last: int = 3) -> bool:
    """perf_analyzer's rule: the last ``last`` windows each within ``tolerance`` of their mean, for requests/s and
    for the latency ``percentile``; fewer windows are not stable."""
    if len(windows) < last:
        return False
    tail = windows[-last:]
    latency = [float(getattr(w, f"{percentile}_ms")) for w in tail]
    return _within([w.rps for w in tail], tolerance) and _within(latency, tolerance)


def _pooled(windows: list[Window], name: str) -> float:
    """A percentile of pooled windows: the request-weighted mean of theirs (their latencies are not kept)."""
    total = sum(w.requests for w in windows)
    if total == 0:
        return 0.0
    return sum(float(getattr(w, name)) * w.requests for w in windows) / total


def pool(
    windows: list[Window],
    *,
    level: float,
    percentile: Percentile,
    tolerance: float,
    rows_per_request: float,
    server_cpu_s: float,
    server_peak_rss_mib: float,
    generator_threads: int,
    server_workers: int = 1,
    offered_rps: float | None = None,
) -> Point:
    """The measured windows as one `Point`: the last 3 when stable, else all of them (``stable=False``).

    ``server_cpu_s`` is the server's CPU over the pooled windows.
    """
    stable = is_stable(windows, percentile, tolerance)
    used = windows[-3:] if stable else windows
    seconds = sum(w.seconds for w in used) or 1e-9
    requests = sum(w.requests for w in used)
    generator_cpu = sum(w.generator_cpu * w.seconds for w in used) / seconds
    threads = max(1, generator_threads)
    busy = generator_cpu >= GENERATOR_BUSY * threads
    backlog_grew = offered_rps is not None and len(used) > 1 and used[-1].backlog > used[0].backlog
    fell_behind = backlog_grew and generator_cpu >= 0.5 * threads and server_cpu_s / seconds < 0.5 * server_workers
    rps = requests / seconds
    return Point(
        level=level,
        rps=rps,
        rows_per_s=rps * rows_per_request,
        p50_ms=_pooled(used, "p50_ms"),
        p90_ms=_pooled(used, "p90_ms"),
        p95_ms=_pooled(used, "p95_ms"),
        p99_ms=_pooled(used, "p99_ms"),
        requests=requests,
        errors=sum(w.errors for w in used),
        server_cpu_ms_per_req=server_cpu_s * 1000 / requests if requests else 0.0,
        server_peak_rss_mib=server_peak_rss_mib,
        generator_cpu=generator_cpu,
        generator_limited=busy or fell_behind,
        stable=stable,
        windows=list(windows),
        offered_rps=offered_rps,
    )


@dataclass(frozen=True, slots=True)
class Target:
    """What every candidate of a tune is measured on: the model version, its request bodies, the load's trace."""

    repository: Path
    model: str
    version: int
    backend: str
    bodies: list[bytes]
    trace: Trace | None
    server_config: Path | None


def prepare_target(
    repository: Path,
    model: str,
    version: int | None,
    load: Load,
    server_config: Path | None,
    trace: Trace | None = None,
) -> Target:
    """Resolve the version (None: the latest the model's policy loads) and build the request bodies.

    Raises:
        ModelNotFound / ConfigError: one-line messages (no such model or version, bodies that cannot be built).
    """
    source = Repository(repository).model(model)
    chosen = version if version is not None else max(source.versions_to_load() or source.artifacts)
    if chosen not in source.artifacts:
        raise ConfigError(f"model {model!r} has no version {chosen} (versions: {sorted(source.artifacts)})")
    if load.mode == "trace" and trace is None:
        raise ConfigError("--load trace: no trace was loaded")
    rows = None if trace is None else [int(r) for r in trace.rows]
    bodies = request_bodies(source, model, load.request_batch, rows=rows, version=chosen)
    return Target(repository, model, chosen, source.backend, bodies, trace, server_config)


def _generator(
    server: TunedServer, target: Target, load: Load, level: float, settings: MeasureSettings
) -> _core.LoadGenerator:
    """Closed loop on ``level`` connections; open loop at rate ``level``, on Poisson arrivals or the trace's
    (``level`` its speed factor)."""
    where = ("127.0.0.1", server.port, server.infer_path, target.bodies)
    if load.mode == "concurrency":
        return _core.LoadGenerator(*where, connections=int(level), threads=settings.threads)
    arrivals = None
    if load.mode == "trace":
        assert target.trace is not None
        arrivals = target.trace.arrivals
    return _core.LoadGenerator(
        *where, connections=settings.open_connections, rate=level, arrivals=arrivals, threads=settings.threads
    )


def _offered(load: Load, level: float, target: Target) -> float | None:
    if load.mode == "rate":
        return level
    if load.mode == "trace" and target.trace is not None and len(target.trace.arrivals) > 1:
        span = float(target.trace.arrivals[-1]) or 1e-9
        return len(target.trace.arrivals) / span * level
    return None


def measure_candidate(
    target: Target,
    candidate: Candidate,
    load: Load,
    slo: Slo,
    settings: MeasureSettings,
    workdir: Path,
    progress: Callable[[str], None] | None = None,
) -> Measurement:
    """One server with the candidate; at each load level a warm-up, then windows until stable or max_windows."""
    started = time.monotonic()
    percentile: Percentile = slo.percentile or "p99"
    rows = (
        float(np.mean(target.trace.rows)) if target.trace is not None and len(target.trace.rows) else load.request_batch
    )
    workdir.mkdir(parents=True, exist_ok=True)
    points: list[Point] = []
    try:
        with TunedServer(
            target.repository, target.model, target.version, candidate, workdir, target.server_config
        ) as server:
            for level in load.levels:
                with _generator(server, target, load, level, settings) as gen:
                    gen.start()
                    gen.window(settings.warmup_s)
                    windows: list[Window] = []
                    cpu_before = server.cpu_seconds()
                    cpu_marks = [cpu_before]
                    while len(windows) < settings.max_windows:
                        raw = gen.window(settings.window_s)
                        windows.append(to_window(raw))
                        cpu_marks.append(server.cpu_seconds())
                        if len(windows) >= settings.min_windows and is_stable(windows, percentile, settings.tolerance):
                            break
                    threads = int(raw.threads)
                stable = is_stable(windows, percentile, settings.tolerance)
                cpu = cpu_marks[-1] - (cpu_marks[-4] if stable else cpu_marks[0])
                point = pool(
                    windows,
                    level=level,
                    percentile=percentile,
                    tolerance=settings.tolerance,
                    rows_per_request=rows,
                    server_cpu_s=max(0.0, cpu),
                    server_peak_rss_mib=server.peak_rss_mib(),
                    generator_threads=threads,
                    server_workers=candidate.workers,
                    offered_rps=_offered(load, level, target),
                )
                points.append(point)
                if progress is not None:
                    progress(
                        f"{candidate.label()} {load.describe(level)}: {point.rps:.0f} req/s "
                        f"{percentile} {point.latency_ms(percentile):.2f} ms"
                        + ("" if point.stable else " (unstable)")
                        + (" (generator-limited)" if point.generator_limited else "")
                    )
    except DriftlineError as exc:
        return Measurement(candidate, [], failed=str(exc), seconds=time.monotonic() - started)
    return Measurement(candidate, points, seconds=time.monotonic() - started)
