"""The SLO metric families: SLI counters of this process (summed across workers like every counter) and, from the
shared history, the objectives, burn rates and budget left (the same in every worker)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from driftline.ops.slo import WINDOWS, definitions, statuses

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.core import Metric

    from driftline.config import ServerSettings
    from driftline.ops.slo import Slo, SloStatus
    from driftline.repository import Repository
    from driftline.serving.traffic import Traffic

__all__ = ["STORE_GAUGES", "SloCollector"]

#: The gauge families read from the shared store: every worker reports the same value (for worker_metrics.py's
#: SHARED_GAUGES: take one, do not sum).
STORE_GAUGES: Final = frozenset(
    {
        "driftline_slo_objective",
        "driftline_slo_latency_threshold_seconds",
        "driftline_slo_burn_rate",
        "driftline_slo_error_budget_remaining",
    }
)
_log = logging.getLogger(__name__)


class SloCollector(Collector):
    """SLI counters from :meth:`Traffic.slo_counts` at the scrape; burn rates and budget from
    :func:`driftline.ops.slo.statuses`, as last refreshed (every few seconds, off the event loop)."""

    def __init__(self, traffic: Traffic, settings: ServerSettings, repository: Repository) -> None:
        """Count from ``traffic``, judge by the SLOs ``settings`` and ``repository`` define."""
        self._traffic = traffic
        self._settings = settings
        self._repository = repository
        self._latest: tuple[list[Slo], list[SloStatus]] = ([], [])

    def refresh(self) -> None:
        """Read the definitions and the history again (on a thread: the period's sums take tens of ms)."""
        slos = definitions(self._settings, self._repository, skip_broken=True)
        self._latest = (slos, statuses(self._traffic.store.db, slos, datetime.now(UTC)))  # one swap: no lock

    async def refresh_forever(self, interval: float) -> None:
        """:meth:`refresh` now and every ``interval`` s, so a scrape only reads what is ready."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # noqa: BLE001 - a failed read must not stop the next ones
                _log.exception("SLO status refresh failed")
            await asyncio.sleep(interval)

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        slos, current = self._latest
        models = sorted({s.model for s in slos})
        requests = CounterMetricFamily(
            "driftline_slo_requests", "Requests that reached a version, for the SLOs", labels=["model"]
        )
        errors = CounterMetricFamily("driftline_slo_errors", "Of them, answered with a 5xx", labels=["model"])
        slow = CounterMetricFamily(
            "driftline_slo_slow_requests", "Of them, answered after the latency threshold", labels=["model"]
        )
        counts = self._traffic.slo_counts()
        for model in models:
            c = counts.get(model)
            requests.add_metric([model], 0 if c is None else c.requests)
            errors.add_metric([model], 0 if c is None else c.errors)
            slow.add_metric([model], 0 if c is None else c.slow)
        objective = GaugeMetricFamily("driftline_slo_objective", "The SLO's objective", labels=["model", "slo"])
        threshold = GaugeMetricFamily(
            "driftline_slo_latency_threshold_seconds", "The latency SLO's threshold", labels=["model"]
        )
        burn = GaugeMetricFamily(
            "driftline_slo_burn_rate",
            "Error ratio over the window / (1 - objective), from driftline's history",
            labels=["model", "slo", "window"],
        )
        budget = GaugeMetricFamily(
            "driftline_slo_error_budget_remaining",
            "Share of the period's error budget left (1 untouched, < 0 overspent), from driftline's history",
            labels=["model", "slo"],
        )
        for s in current:
            objective.add_metric([s.model, s.kind], s.objective)
            if s.threshold_s is not None:
                threshold.add_metric([s.model], s.threshold_s)
            for window in WINDOWS:
                rate = s.burn_rates[window]
                if rate is not None:  # no requests in the window: no ratio, rather than a made-up 0
                    burn.add_metric([s.model, s.kind, window], rate)
            if s.budget_left is not None:
                budget.add_metric([s.model, s.kind], s.budget_left)
        yield from (requests, errors, slow, objective, threshold, burn, budget)
