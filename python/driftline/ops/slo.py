"""SLO definitions and their status from the minute history: SLIs, error budget, multiwindow burn rates.

One definition per (model, kind), built from the model's ``[slo]`` over the server's (``SloSettings``); the
server's gauges, ``GET /v1/ops/slo``, ``driftline ops rules`` and ``driftline ops grafana`` all read these
definitions, so Prometheus' alerts and driftline's own status judge the same numbers (docs/slo.md).

Burn rate over a window = the window's error ratio / (1 - objective): 1 spends the budget exactly over the period.
The alerts are the SRE workbook's multiwindow multi-burn-rate pair (chapter 5, "Alerting on SLOs"): ``page`` when
the 1 h and 5 m burn rates both exceed 14.4 (2% of a 30-day budget in an hour), ``ticket`` when the 6 h and 30 m
both exceed 6 (5% in six hours). A period of 28 to 30 days uses those factors as they stand; another period keeps
the same budget shares, so the factors scale by period / 30 days.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal

from driftline.errors import ConfigError
from driftline.ops.history import SloTotals, slo_totals
from driftline.store.traffic import minute_of

if TYPE_CHECKING:
    from driftline.config import ServerSettings, SloSettings
    from driftline.repository import Repository
    from driftline.store.db import Database

__all__ = [
    "ALERTS",
    "WINDOWS",
    "Alert",
    "Slo",
    "SloStatus",
    "burn_rate",
    "definitions",
    "model_slo_settings",
    "slo_statuses",
    "statuses",
]

_log = logging.getLogger(__name__)

Kind = Literal["availability", "latency"]

#: The burn-rate windows, name -> seconds.
WINDOWS: Final[dict[str, int]] = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600}
_DAY_S: Final = 86400.0
_WORKBOOK_PERIOD_S: Final = 30 * _DAY_S


@dataclass(frozen=True, slots=True)
class Alert:
    """A multiwindow burn-rate alert: fires when both windows burn faster than ``factor`` (for a 30-day period)."""

    name: str
    long: str
    short: str
    factor: float
    severity: str

    def threshold(self, period_s: float) -> float:
        """The burn rate both windows must exceed for an SLO over ``period_s``."""
        if 28 * _DAY_S <= period_s <= 30 * _DAY_S:
            return self.factor
        return self.factor * period_s / _WORKBOOK_PERIOD_S


ALERTS: Final = (Alert("page", "1h", "5m", 14.4, "page"), Alert("ticket", "6h", "30m", 6.0, "ticket"))


@dataclass(frozen=True, slots=True)
class Slo:
    """One SLO of one model."""

    model: str
    kind: Kind
    objective: float  # the share of good requests aimed at, e.g. 0.999
    threshold_s: float | None  # latency SLOs: a request slower than this is bad; availability: None
    period_s: float

    @property
    def budget(self) -> float:
        """The share of requests that may be bad over the period."""
        return 1.0 - self.objective


@dataclass(frozen=True, slots=True)
class SloStatus:
    """One SLO now, from the history."""

    model: str
    kind: Literal["availability", "latency"]
    objective: float  # e.g. 0.999
    threshold_s: float | None  # latency SLOs: the threshold; availability: None
    period_s: float  # the SLO period (e.g. 28 days)
    sli: float | None  # good / total over the period (None: no traffic)
    budget_left: float | None  # share of the error budget left over the period, 1.0 = untouched, < 0 = overspent
    burn_rates: dict[str, float | None]  # keys "5m", "30m", "1h", "6h"
    alerts: list[str]  # the alert names firing now ("page" 1h&5m > 14.4, "ticket" 6h&30m > 6)


def model_slo_settings(settings: ServerSettings, repository: Repository, model: str) -> SloSettings | None:
    """A model's SLO settings (its ``[slo]`` over the server's), None when SLOs are off for it.

    Raises:
        ConfigError / ModelNotFound: the model's folder cannot be read.
    """
    if not settings.slo.enabled:
        return None
    own = repository.model(model).config.slo.over(settings.slo)
    return own if own.enabled else None


def definitions(settings: ServerSettings, repository: Repository, *, skip_broken: bool = False) -> list[Slo]:
    """Every model's SLOs (availability then latency), by model name; ``skip_broken``: a model whose folder
    cannot be read is left out (logged) instead of raising :class:`ConfigError`."""
    out: list[Slo] = []
    for name in repository.model_names():
        try:
            own = model_slo_settings(settings, repository, name)
        except ConfigError:
            if not skip_broken:
                raise
            _log.warning("model %s: its config cannot be read, so it has no SLO status", name, exc_info=True)
            continue
        if own is None:
            continue
        period_s = own.period_days * _DAY_S
        out.append(Slo(name, "availability", own.availability, None, period_s))
        out.append(Slo(name, "latency", own.latency_objective, own.latency_threshold_ms / 1e3, period_s))
    return out


def burn_rate(bad: int, total: int, objective: float) -> float | None:
    """The error ratio bad/total over the budget 1 - objective; None without requests."""
    if total == 0:
        return None
    return bad / total / (1.0 - objective)


def _firing(slo: Slo, rates: dict[str, float | None]) -> list[str]:
    out = []
    for alert in ALERTS:
        limit = alert.threshold(slo.period_s)
        long, short = rates[alert.long], rates[alert.short]
        if long is not None and short is not None and long > limit and short > limit:
            out.append(alert.name)
    return out


def statuses(db: Database, slos: list[Slo], now: datetime) -> list[SloStatus]:
    """The status of each of ``slos`` at ``now``. A window is the minutes that end after ``now`` minus its length
    (the current, partial minute included); a model's SLOs share one read of each window (the period's is the
    costly one: a sum over up to 30 days of minutes)."""
    until = minute_of(now.timestamp()) + 1
    read: dict[tuple[str, int], SloTotals] = {}

    def bad_total(slo: Slo, seconds: float) -> tuple[int, int]:
        key = (slo.model, until - math.ceil(seconds / 60))
        t = read.get(key)
        if t is None:
            t = read[key] = slo_totals(db, slo.model, key[1], until)
        return (t.errors if slo.kind == "availability" else t.slow), t.requests

    out = []
    for slo in slos:
        rates = {name: burn_rate(*bad_total(slo, seconds), slo.objective) for name, seconds in WINDOWS.items()}
        bad, total = bad_total(slo, slo.period_s)
        spent = burn_rate(bad, total, slo.objective)
        out.append(
            SloStatus(
                model=slo.model,
                kind=slo.kind,
                objective=slo.objective,
                threshold_s=slo.threshold_s,
                period_s=slo.period_s,
                sli=None if total == 0 else (total - bad) / total,
                budget_left=None if spent is None else 1.0 - spent,
                burn_rates=rates,
                alerts=_firing(slo, rates),
            )
        )
    return out


def slo_statuses(
    db: Database, settings: ServerSettings, repository: Repository, now: datetime | None = None
) -> list[SloStatus]:
    """Every model's SLO status from the history (what every process saved so far), by model then kind."""
    return statuses(db, definitions(settings, repository, skip_broken=True), now or datetime.now(UTC))
