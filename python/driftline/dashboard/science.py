"""The data-science view: per model, drift per feature of each version's live window, live quality (labels joined
to captured rows) and CBPE's estimate before labels, both with intervals, window by window; shadow comparisons; and
the model's experiments. Everything is read from the services the API routes read (drift, quality, lifecycle,
experiments), so the page shows the numbers those routes answer."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Final

from driftline.dashboard.charts import Series, line_chart
from driftline.dashboard.layout import table
from driftline.drift.html import fmt_number
from driftline.errors import DriftlineError
from driftline.feedback.html import main_metric
from driftline.store.traffic import minute_of

if TYPE_CHECKING:
    from driftline.feedback.report import VersionQuality
    from driftline.quality import Estimate
    from driftline.quality.cbpe import EstimatedMetric
    from driftline.server.services import Services

__all__ = ["render_science"]

_VIEWS: Final = ("current", "last", "sliding")


def _interval(e: Estimate | EstimatedMetric) -> str:
    return f"{fmt_number(e.value)} <span class='sub'>[{fmt_number(e.lower)}, {fmt_number(e.upper)}]</span>"


def _verdict(verdict: str) -> str:
    return f"<span class='badge {escape(verdict)}'>{escape(verdict.replace('_', ' '))}</span>"


def _drift(services: Services, name: str, versions: list[int]) -> list[str]:
    """Per version, each feature judged over three views of its live window (the open one, the last closed one,
    and the sliding view the drift route and alerts use), by the version's own policy; nothing is alerted."""
    parts = []
    for version in versions:
        window = services.drift.window(name, str(version))
        if window is None:
            parts.append(f"<div class='sub'>version {version}: no reference data, so no drift report</div>")
            continue
        policy = services.drift.policy(name, str(version))
        reports = {view: window.report(policy, view=view) for view in _VIEWS}
        sliding = reports["sliding"]
        by_view = {view: {f.name: f for f in r.features} for view, r in reports.items()}
        rows = []
        for f in sliding.features:
            cells = [f"<b>{escape(f.name)}</b>", escape(f.stat)]
            for view in _VIEWS:
                g = by_view[view].get(f.name)
                cells.append("-" if g is None else f"{fmt_number(g.value)} {_verdict(g.verdict)}")
            cells += [fmt_number(f.pvalue), f"{f.n_ref:,}", f"{f.n_cur:,}"]
            rows.append(cells)
        keep = min(window.windows_closed, services.settings.drift.keep)
        parts += [
            f"<h3>Drift · version {version} · {_verdict(sliding.verdict)}</h3>",
            f"<div class='sub'>{sliding.n_drifted} of {len(sliding.features)} features drifted over the sliding "
            f"view: the last {keep} closed window(s) and the open one; {window.windows_closed:,} window(s) closed "
            f"so far, {window.n_rows:,} row(s) in the open one</div>",
            table(
                [
                    "Feature",
                    "Statistic",
                    "Open window",
                    "Last closed",
                    "Sliding",
                    "p-value (sliding)",
                    "Reference n",
                    "Current n (sliding)",
                ],
                rows,
                f"drift-{name}-{version}",
            ),
        ]
    return parts


def _quality_rows(versions: list[VersionQuality]) -> list[list[str]]:
    rows = []
    for v in versions:
        measured = "-" if v.overall is None else _interval(main_metric(v.overall)[1])
        estimated = "-" if v.estimated is None else _interval(v.estimated.accuracy)
        rows.append(
            [f"<b>{v.version}</b>", f"{v.captured:,}", f"{v.labeled:,}", f"{v.coverage:.1%}", measured, estimated]
        )
    return rows


def _quality(services: Services, name: str, hours: int, now: datetime) -> list[str]:
    try:
        services.quality.config(name)
    except DriftlineError:
        return ["<div class='sub'>no [quality] table: live quality is off for this model</div>"]
    since = now - timedelta(hours=hours)
    window = timedelta(minutes=max(5, hours * 60 // 24))
    report = services.quality.report(name, since=since, window=window, confidence=0.95)
    if not report.versions:
        return ["<div class='sub'>no captured rows in this range</div>"]
    metric = next((main_metric(v.overall)[0] for v in report.versions if v.overall is not None), "accuracy")
    lines, estimates = [], []
    for v in report.versions:
        measured = [(w, main_metric(w.quality)[1]) for w in v.windows if w.quality is not None]
        lines.append(
            Series(
                f"v{v.version} measured",
                [(minute_of(w.start.timestamp()), e.value) for w, e in measured],
                [(minute_of(w.start.timestamp()), e.lower, e.upper) for w, e in measured if _finite(e)],
            )
        )
        guessed = [(w, w.estimated.accuracy) for w in v.windows if w.estimated is not None]
        if guessed:
            estimates.append(
                Series(
                    f"v{v.version} estimated (CBPE)",
                    [(minute_of(w.start.timestamp()), e.value) for w, e in guessed],
                    [(minute_of(w.start.timestamp()), e.lower, e.upper) for w, e in guessed if _finite(e)],
                )
            )
    start, end = minute_of(since.timestamp()), minute_of(now.timestamp()) + 1
    return [
        table(
            ["Version", "Captured", "Labeled", "Coverage", f"{metric} (95% interval)", "Estimated accuracy (CBPE)"],
            _quality_rows(report.versions),
            f"quality-{name}",
        ),
        f"<div class='sub'>{report.unmatched:,} label(s) name no captured row</div>",
        "<div class='charts'>",
        line_chart(f"{name}: {metric} per {window.seconds // 60} min, 95% band", lines, start, end),
        line_chart(f"{name}: estimated accuracy (CBPE)", estimates, start, end) if estimates else "",
        "</div>",
    ]


def _finite(e: Estimate | EstimatedMetric) -> bool:
    return math.isfinite(e.lower) and math.isfinite(e.upper)


def _shadows(services: Services, name: str) -> list[str]:
    rows = [
        [
            f"v{s.primary_version} → v{s.shadow_version}",
            f"{s.requests:,}",
            f"{s.compared_rows:,}",
            "-" if s.agreement is None else f"{s.agreement:.2%}",
            fmt_number(s.mean_abs_diff),
            fmt_number(s.primary_latency_ms),
            fmt_number(s.shadow_latency_ms),
            f"{s.shadow_errors:,}",
            escape(s.last_error or ""),
        ]
        for s in (p.summary() for p in services.lifecycle.shadow_pairs(name))
    ]
    head = ["Pair", "Requests", "Rows compared", "Agreement", "Mean |diff|", "Primary ms", "Shadow ms", "Errors", ""]
    return [table(head, rows, f"shadows-{name}", empty="no shadow comparisons")]


def _experiments(services: Services, name: str) -> list[str]:
    rows = [
        [
            f"{e.id}",
            f"<b>{escape(e.spec.name)}</b>",
            escape(e.state),
            escape(", ".join(f"{arm}: v{v}" for arm, v in sorted(e.versions.items()))),
            f"{e.started_at:%Y-%m-%d %H:%M}",
            escape(e.stop_reason or ""),
        ]
        for e in services.experiments.list(name)
    ]
    head = ["Id", "Name", "State", "Arms", "Started (UTC)", "Stopped because"]
    return [table(head, rows, f"experiments-{name}", empty="no experiments")]


def render_science(services: Services, hours: int) -> list[str]:
    """The view's body for the last ``hours`` hours; blocking (reads the store and the captured segments)."""
    now = datetime.now(UTC)
    parts = []
    for name, loaded in sorted(services.table.loaded().items()):
        versions = sorted(loaded)
        parts += [
            f"<h2 id='model-{escape(name)}'>{escape(name)}</h2>",
            *_drift(services, name, versions),
            "<h3>Live quality</h3>",
            *_quality(services, name, hours, now),
            "<h3>Shadow comparisons</h3>",
            *_shadows(services, name),
            "<h3>Experiments</h3>",
            *_experiments(services, name),
        ]
    return parts or ["<div class='sub'>no model is loaded</div>"]
