"""The recommendation: which point of a measurement meets the SLO, the objective, the ranking, the patch."""

from __future__ import annotations

import math

from driftline.tune.spec import Candidate, Load, Measurement, Point, Slo, config_patch
from driftline.tune.toml_patch import patch_config_text

__all__ = ["best_point", "margin_ms", "objective", "patch_toml", "rank", "serve_flags", "shortfall", "stability_notes"]

#: Open loop: a point counts only when the server answered this share of the offered rate.
KEPT_UP = 0.95


def _usable(p: Point, load: Load) -> bool:
    if p.errors or p.generator_limited:
        return False
    return load.mode != "rate" or p.offered_rps is None or p.rps >= KEPT_UP * p.offered_rps


def _meets(p: Point, slo: Slo, load: Load) -> bool:
    if not _usable(p, load):
        return False
    if slo.percentile is not None and slo.limit_ms is not None and p.latency_ms(slo.percentile) > slo.limit_ms:
        return False
    return slo.min_rps is None or p.rps >= slo.min_rps


def best_point(m: Measurement, slo: Slo, load: Load) -> Point | None:
    """With a latency limit, the highest-rps point meeting the SLO; with only a floor, the lowest-p99 one."""
    ok = [p for p in m.points if _meets(p, slo, load)] if m.failed is None else []
    if not ok:
        return None
    if slo.limit_ms is None:
        return min(ok, key=lambda p: p.p99_ms)
    return max(ok, key=lambda p: p.rps)


def objective(m: Measurement, slo: Slo, load: Load) -> float | None:
    """Higher is better: requests/s of `best_point`, or its p99 negated under a throughput floor alone."""
    p = best_point(m, slo, load)
    if p is None:
        return None
    return p.rps if slo.limit_ms is not None else -p.p99_ms


def shortfall(m: Measurement, slo: Slo, load: Load) -> float:
    """How far a candidate's nearest usable point is from the SLO (relative; 0: meets it)."""
    best = math.inf
    for p in m.points:
        if not _usable(p, load):
            continue
        miss = 0.0
        if slo.percentile is not None and slo.limit_ms is not None:
            miss += max(0.0, p.latency_ms(slo.percentile) / slo.limit_ms - 1)
        if slo.min_rps is not None:
            miss += max(0.0, 1 - p.rps / slo.min_rps)
        best = min(best, miss)
    return best


def rank(measurements: list[Measurement], slo: Slo, load: Load) -> list[Measurement]:
    """Meeting candidates first by objective, then the rest by how close they came, failed ones last (stable)."""

    def key(m: Measurement) -> tuple[int, float]:
        if m.failed is not None or not m.points:
            return (2, 0.0)
        value = objective(m, slo, load)
        return (0, -value) if value is not None else (1, shortfall(m, slo, load))

    return sorted(measurements, key=key)


def margin_ms(point: Point, slo: Slo) -> float | None:
    """How far inside the latency limit the point is (limit - percentile), or None with no latency limit."""
    if slo.percentile is None or slo.limit_ms is None:
        return None
    return slo.limit_ms - point.latency_ms(slo.percentile)


def stability_notes(m: Measurement, slo: Slo, load: Load) -> list[str]:
    """A note when the recommendation rests on a point whose windows did not settle."""
    p = best_point(m, slo, load)
    if p is None or p.stable:
        return []
    return [
        f"the recommended point ({m.candidate.label()} at {load.describe(p.level)}) did not settle within its "
        "windows (unstable): re-run to confirm"
    ]


def patch_toml(candidate: Candidate, backend: str) -> str:
    """The config.toml text that pins ``candidate`` (``workers`` is a serve flag, see `serve_flags`)."""
    return f"# driftline tune: {candidate.label()}\n" + patch_config_text("", config_patch(candidate, backend))


def serve_flags(candidate: Candidate) -> list[str]:
    """``driftline serve`` flags the candidate needs beyond its config.toml."""
    return ["--workers", str(candidate.workers)] if candidate.workers != 1 else []
