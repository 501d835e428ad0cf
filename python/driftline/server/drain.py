"""Whether this process is draining: SIGTERM came, readiness answers 503, requests are still served until the
drain delay is over (http/drain.py owns the signals; this is the state readiness and metrics read)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import Metric

__all__ = ["Drain", "DrainCollector"]


class Drain:
    """One process's drain: set once, from a signal handler, so ``begin`` is plain assignments (no lock, no log)."""

    __slots__ = ("delay_s", "signal_name", "since")

    def __init__(self) -> None:
        """Not draining."""
        self.since: float | None = None  # time.monotonic() of the signal that began it
        self.delay_s = 0.0
        self.signal_name = ""

    @property
    def draining(self) -> bool:
        """Whether a stop signal came (readiness is 503 from then on, until the process exits)."""
        return self.since is not None

    def begin(self, signal_name: str, delay_s: float) -> None:
        """Start draining: requests go on being served for ``delay_s`` seconds, then the server shuts down."""
        self.signal_name = signal_name
        self.delay_s = delay_s
        self.since = time.monotonic()

    def reason(self) -> str:
        """What readiness says while draining, e.g. ``draining after SIGTERM: shutting down in 1.6 s``."""
        since = self.since
        if since is None:
            return ""
        left = self.delay_s - (time.monotonic() - since)
        when = f"in {left:.1f} s" if left > 0 else "now (finishing the requests in flight)"
        return f"draining after {self.signal_name}: shutting down {when}"


class DrainCollector(Collector):
    """``driftline_draining``: 1 while this process drains; with several workers the scrape sums them, so it
    counts the worker processes draining."""

    def __init__(self, drain: Drain) -> None:
        """Report this process's drain."""
        self._drain = drain

    def collect(self) -> Iterator[Metric]:
        """Yield the gauge."""
        yield GaugeMetricFamily(
            "driftline_draining",
            "Worker processes draining after SIGTERM or SIGINT (readiness answers 503; requests are still served)",
            value=1.0 if self._drain.draining else 0.0,
        )
