"""The business view: per model, each KPI per version (events, sum, mean with a 95% Student t interval) over all
time, as ``GET /v1/models/{m}/kpi`` sums them, and its mean over the last hours with the interval as a band; and
which version served how much traffic (the minute history, ops/history.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING

import polars as pl

from driftline.dashboard.charts import Series, line_chart
from driftline.dashboard.layout import table
from driftline.drift.html import fmt_number
from driftline.ops.history import version_minutes
from driftline.stats.bounds import fixed_radius
from driftline.store.traffic import minute_of

if TYPE_CHECKING:
    from driftline.server.services import Services

__all__ = ["kpi_means", "render_business"]

_ALPHA = 0.05


def kpi_means(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Per group of ``by`` of attributed events (``value``): events, sum, mean and the 95% interval's ends
    (``low``, ``high``; NaN with fewer than two events)."""
    grouped = (
        frame.group_by(by)
        .agg(
            pl.len().alias("events"),
            pl.col("value").sum().alias("sum"),
            pl.col("value").mean().alias("mean"),
            pl.col("value").var().fill_null(math.nan).alias("var"),
        )
        .sort(by)
    )
    n = grouped["events"].to_numpy().astype(float)
    radius = fixed_radius(grouped["var"].to_numpy() / n, n - 1, _ALPHA)
    mean = grouped["mean"].to_numpy()
    return grouped.with_columns(pl.Series("low", mean - radius), pl.Series("high", mean + radius))


def _kpis(services: Services, name: str, since: datetime, start: int, end: int) -> list[str]:
    found = services.kpis.attributed(name)
    frame = found.frame.filter(pl.col("version").is_not_null())
    if not found.unattributed:
        return ["<div class='sub'>no KPI events</div>"]
    parts = []
    totals = kpi_means(frame, ["name", "version"]) if len(frame) else None
    for kpi, unattributed in sorted(found.unattributed.items()):
        rows = []
        if totals is not None:
            for r in totals.filter(pl.col("name") == kpi).iter_rows(named=True):
                interval = f"[{fmt_number(r['low'])}, {fmt_number(r['high'])}]" if math.isfinite(r["low"]) else "-"
                rows.append(
                    [
                        f"<b>v{r['version']}</b>",
                        f"{r['events']:,}",
                        fmt_number(r["sum"]),
                        fmt_number(r["mean"]),
                        interval,
                    ]
                )
        step = max(5, (end - start) // 24)
        recent = frame.filter((pl.col("name") == kpi) & (pl.col("at") >= since)).with_columns(
            ((pl.col("at").dt.epoch("s") // 60 - start) // step * step + start).alias("minute")
        )
        series = []
        if len(recent):
            per = kpi_means(recent, ["version", "minute"])
            for version in sorted(set(per["version"].to_list())):
                part = per.filter(pl.col("version") == version)
                points = [(int(m), float(v)) for m, v in zip(part["minute"], part["mean"], strict=True)]
                band = [
                    (int(m), float(lo), float(hi))
                    for m, lo, hi in zip(part["minute"], part["low"], part["high"], strict=True)
                    if math.isfinite(lo) and math.isfinite(hi)
                ]
                series.append(Series(f"v{version}", points, band))
        parts += [
            f"<h3>KPI {escape(kpi)}</h3>",
            table(
                ["Version", "Events", "Sum", "Mean", "95% interval of the mean"],
                rows,
                f"kpi-{name}-{kpi}",
                empty="no attributed events",
            ),
            f"<div class='sub'>{unattributed:,} event(s) no captured request claims</div>",
            "<div class='charts'>",
            line_chart(f"{name}: mean {kpi} per {step} min, 95% band", series, start, end),
            "</div>",
        ]
    return parts


def _traffic(services: Services, name: str, start: int, end: int) -> list[str]:
    minutes = version_minutes(services.traffic.store.db, start, end, model=name)
    per_version: dict[int, dict[int, int]] = {}
    for m in minutes:
        per_version.setdefault(m.version, {})[m.minute] = m.requests
    total = sum(sum(v.values()) for v in per_version.values())
    rows = [
        [f"<b>v{version}</b>", f"{sum(counts.values()):,}", f"{sum(counts.values()) / total:.1%}" if total else "-"]
        for version, counts in sorted(per_version.items())
    ]
    series = [
        Series(f"v{version}", [(m, float(counts.get(m, 0))) for m in range(start, end)])
        for version, counts in sorted(per_version.items())
    ]
    return [
        table(["Version", "Requests", "Share"], rows, f"traffic-{name}", empty="no traffic in this range"),
        f"<div class='charts'>{line_chart(f'{name}: requests per minute by version', series, start, end, stacked=True)}"
        "</div>",
    ]


def render_business(services: Services, hours: int) -> list[str]:
    """The view's body for the last ``hours`` hours; blocking (reads the store and the captured segments)."""
    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    start, end = minute_of(since.timestamp()), minute_of(now.timestamp()) + 1
    services.traffic.flush()  # this process's last seconds of traffic are in the history too
    parts = []
    for name in sorted(services.table.loaded()):
        parts += [
            f"<h2 id='model-{escape(name)}'>{escape(name)}</h2>",
            "<h3>Traffic per version</h3>",
            *_traffic(services, name, start, end),
            *_kpis(services, name, since, start, end),
        ]
    return parts or ["<div class='sub'>no model is loaded</div>"]
