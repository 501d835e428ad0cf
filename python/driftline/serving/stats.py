"""Per model-version counters: Triton's statistics extension and the Prometheus histograms, in one place.

Every update happens on the event loop thread (workers hand their timings to the loop with the results), so the
counters need no lock and cost a few attribute increments per request instead of prometheus_client's locked
``observe``; /metrics and /v2/models/stats read them at scrape time.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from driftline.repository.names import is_version

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "UNKNOWN_MODEL", "Duration", "Histogram", "ModelStats", "RequestErrors"]

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)


@dataclass(slots=True)
class Duration:
    """Triton's ``{count, ns}`` pair."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        """Add ``count`` events lasting ``ns`` nanoseconds in all."""
        self.count += count
        self.ns += ns

    def as_dict(self) -> dict[str, int]:
        """The protocol's JSON form."""
        return {"count": self.count, "ns": self.ns}


class Histogram:
    """A fixed-bucket histogram in the Prometheus sense (buckets are upper bounds; counts are not cumulative here)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        """Create empty buckets with the given upper bounds (+Inf is implied)."""
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Record one value."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as Prometheus exposes them."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*(repr(b) for b in self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass(slots=True)
class _BatchSizeStats:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass(slots=True)
class ModelStats:
    """Everything counted for one loaded model version."""

    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    batch_sizes: dict[int, _BatchSizeStats] = field(default_factory=dict)
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    queue_time: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    compute_time: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    batch_size: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))

    def record_batch(self, rows: int, requests: int, input_ns: int, infer_ns: int, output_ns: int) -> None:
        """Count one executed batch; each of its requests is charged the batch's compute times, as Triton does."""
        self.execution_count += 1
        self.inference_count += rows
        self.last_inference_ms = time.time_ns() // 1_000_000
        self.compute_input.add(input_ns * requests, requests)
        self.compute_infer.add(infer_ns * requests, requests)
        self.compute_output.add(output_ns * requests, requests)
        per_size = self.batch_sizes.get(rows)
        if per_size is None:
            per_size = self.batch_sizes[rows] = _BatchSizeStats()
        per_size.compute_input.add(input_ns)
        per_size.compute_infer.add(infer_ns)
        per_size.compute_output.add(output_ns)
        self.batch_size.observe(rows)
        self.compute_time.observe((input_ns + infer_ns + output_ns) / 1e9)

    def record_request(self, ok: bool, total_ns: int, queue_ns: int) -> None:
        """Count one answered request (success or failure) with its end-to-end and queue time."""
        (self.success if ok else self.fail).add(total_ns)
        if ok:
            self.queue.add(queue_ns)
            self.queue_time.observe(queue_ns / 1e9)
        self.latency.observe(total_ns / 1e9)

    def as_triton(self, name: str, version: str) -> dict[str, object]:
        """One entry of Triton's ``model_stats`` list."""
        empty = Duration().as_dict()
        return {
            "name": name,
            "version": version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.as_dict(),
                "fail": self.fail.as_dict(),
                "queue": self.queue.as_dict(),
                "compute_input": self.compute_input.as_dict(),
                "compute_infer": self.compute_infer.as_dict(),
                "compute_output": self.compute_output.as_dict(),
                # driftline has no response cache yet: both counters exist so perf_analyzer can read them.
                "cache_hit": empty,
                "cache_miss": empty,
            },
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": s.compute_input.as_dict(),
                    "compute_infer": s.compute_infer.as_dict(),
                    "compute_output": s.compute_output.as_dict(),
                }
                for size, s in sorted(self.batch_sizes.items())
            ],
        }


#: The model label of requests naming a model the server does not have: one fixed value, so a client sending
#: random names cannot grow the series without bound (model names must start with a letter or digit).
UNKNOWN_MODEL = "_unknown"


class RequestErrors:
    """Inference requests answered with an error, by model, version and HTTP status, counted where they are
    answered (the fast path and the Litestar route), so a 400 or 404 refused before any queue is counted too.

    Labels stay bounded: a model the repository does not have counts under :data:`UNKNOWN_MODEL`, and a version
    label is kept only when it names a loaded version (an alias or anything else counts under ``""``).
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        """Start at zero."""
        self.counts: dict[tuple[str, str, int], int] = {}

    def record(self, name: str | None, loaded: Collection[int], version: str | None, status: int) -> None:
        """Count one error answer; ``name`` is None for a model the repository does not have, ``loaded`` are
        the model's loaded version numbers."""
        if name is None:
            name, label = UNKNOWN_MODEL, ""
        else:
            label = version if version is not None and is_version(version) and int(version) in loaded else ""
        key = (name, label, status)
        self.counts[key] = self.counts.get(key, 0) + 1
