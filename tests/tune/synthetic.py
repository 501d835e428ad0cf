"""Synthetic measurements for the tuner's unit tests: deterministic response surfaces with seeded noise."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

from driftline.tune.spec import Candidate, Measurement, Point, Window

Surface = Callable[[Candidate, float], tuple[float, float]]


def point(level: float, rps: float, p99: float, **extra: object) -> Point:
    """A point with every field filled in from its throughput and p99."""
    window = Window(1.0, int(rps), 0, rps, p99 / 2, p99 * 0.8, p99 * 0.9, p99)
    fields: dict[str, object] = {
        "level": level,
        "rps": rps,
        "rows_per_s": rps,
        "p50_ms": p99 / 2,
        "p90_ms": p99 * 0.8,
        "p95_ms": p99 * 0.9,
        "p99_ms": p99,
        "requests": int(rps * 3),
        "errors": 0,
        "server_cpu_ms_per_req": 0.5,
        "server_peak_rss_mib": 80.0,
        "generator_cpu": 0.2,
        "generator_limited": False,
        "stable": True,
        "windows": [window, window, window],
    }
    fields.update(extra)
    return Point(**fields)  # type: ignore[arg-type]


def cpu_surface(cores: int = 2, gpu: bool = False) -> Surface:
    """A CPU-bound model: batching amortises a fixed cost per batch, parallelism beyond the cores contends, extra
    workers cost overhead, the queue delay adds latency at low load, and cuda (when ``gpu``) runs batches faster."""

    def surface(c: Candidate, level: float) -> tuple[float, float]:
        parallel = c.instances * c.workers
        contention = max(1.0, parallel * c.threads / cores) * (1 + 0.08 * (c.workers - 1))
        batch = max(1.0, min(c.max_batch_size, level / parallel)) if c.max_batch_size else 1.0
        speed = 4.0 if gpu and c.device.startswith("cuda") else 1.0
        batch_ms = (0.6 + 0.12 * batch / min(c.threads, cores)) * contention / speed
        rps = min(parallel, level) * batch / batch_ms * 1000
        wait = c.max_queue_delay_us / 1000 if c.max_batch_size and level < 4 * parallel else 0.0
        p99 = level / rps * 1000 * 1.6 + wait + 0.3 * (len(c.preferred_batch_sizes) == 0)
        return rps, p99

    return surface


def measurer(
    surface: Surface, levels: tuple[float, ...], seed: int = 0, noise: float = 0.03
) -> Callable[[Candidate], Measurement]:
    """A measure function over ``surface``: the same candidate gives the same numbers (noise seeded by its label)."""

    def measure(c: Candidate) -> Measurement:
        points = []
        for level in levels:
            rng = random.Random(zlib.crc32(f"{seed} {c.label()} {level}".encode()))
            rps, p99 = surface(c, level)
            points.append(point(level, rps * (1 + rng.gauss(0, noise)), p99 * (1 + rng.gauss(0, noise))))
        return Measurement(c, points, seconds=1.0)

    return measure
