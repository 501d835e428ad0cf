"""The operations view: per model and version, requests/s, p50/p99 latency, errors by code, queue depth and batch
size over the last hours (the minute history, ops/history.py); SLO status and error budget left (ops/slo.py); CPU
and resident memory per worker process; the live queues of this worker's loaded versions; registry sync health."""

from __future__ import annotations

import time
from html import escape
from typing import TYPE_CHECKING

from driftline.dashboard.charts import Series, fmt_value, line_chart
from driftline.dashboard.layout import table
from driftline.drift.html import cards, fmt_number
from driftline.ops.history import VersionMinute, version_minutes, worker_minutes
from driftline.ops.slo import slo_statuses
from driftline.store.traffic import minute_of

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from driftline.server.services import Services

__all__ = ["render_operations"]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _per_version(
    rows: Sequence[VersionMinute],
    start: int,
    end: int,
    value: Callable[[VersionMinute], float | None],
    fill: float | None,
) -> list[Series]:
    """One series per version of ``value`` per minute; minutes without a row are ``fill`` (0 for counts)."""
    by: dict[int, dict[int, VersionMinute]] = {}
    for m in rows:
        by.setdefault(m.version, {})[m.minute] = m
    series = []
    for version, minutes in sorted(by.items()):
        points = [(t, value(minutes[t]) if t in minutes else fill) for t in range(start, end)]
        series.append(Series(f"v{version}", points))
    return series


def _model_charts(name: str, rows: Sequence[VersionMinute], start: int, end: int) -> list[str]:
    per_code: dict[int, dict[int, int]] = {}
    for m in rows:
        for code, n in m.errors.items():
            counts = per_code.setdefault(code, {})
            counts[m.minute] = counts.get(m.minute, 0) + n
    errors = [
        Series(str(code), [(t, float(counts.get(t, 0))) for t in range(start, end)])
        for code, counts in sorted(per_code.items())
    ]
    latency = [
        Series(f"{s.label} {q}", s.points)
        for q, pick in (("p50", lambda m: m.p50_s), ("p99", lambda m: m.p99_s))
        for s in _per_version(rows, start, end, pick, None)
    ]
    return [
        "<div class='charts'>",
        line_chart(f"{name}: requests/s", _per_version(rows, start, end, lambda m: m.requests / 60, 0.0), start, end),
        line_chart(f"{name}: latency p50 / p99", latency, start, end, unit="s"),
        line_chart(f"{name}: errors per minute by status", errors, start, end),
        line_chart(
            f"{name}: queue depth (max per minute)",
            _per_version(rows, start, end, lambda m: float(m.queue_depth_max), 0.0),
            start,
            end,
        ),
        line_chart(
            f"{name}: rows per batch",
            _per_version(rows, start, end, lambda m: m.rows / m.batches if m.batches else None, None),
            start,
            end,
        ),
        "</div>",
    ]


def _versions_table(services: Services, rows: Sequence[VersionMinute], recent: int) -> str:
    """Per version: the range's requests and errors, the last 5 minutes' rate (``recent``: their first minute),
    the last minute's latency quantiles, and this worker's live queue and mean batch size."""
    totals: dict[tuple[str, int], list[VersionMinute]] = {}
    for m in rows:
        totals.setdefault((m.model, m.version), []).append(m)
    loaded = services.table.loaded()
    keys = sorted(set(totals) | {(n, v) for n, versions in loaded.items() for v in versions})
    out = []
    for model, version in keys:
        seen = totals.get((model, version), [])
        requests = sum(m.requests for m in seen)
        errors: dict[int, int] = {}
        for m in seen:
            for code, n in m.errors.items():
                errors[code] = errors.get(code, 0) + n
        last = next((m for m in reversed(seen) if m.p99_s is not None), None)
        live = loaded.get(model, {}).get(version)
        queue = live.batcher.stats() if live is not None else {}
        s = live.stats if live is not None else None
        out.append(
            [
                f"<b>{escape(model)}</b>",
                f"{version}",
                f"{requests:,}",
                f"{sum(m.requests for m in seen if m.minute >= recent) / 300:.3g}",
                escape(", ".join(f"{c}: {n:,}" for c, n in sorted(errors.items()))) or "-",
                "-" if last is None or last.p50_s is None else fmt_value(last.p50_s, "s"),
                "-" if last is None or last.p99_s is None else fmt_value(last.p99_s, "s"),
                "-" if live is None else f"{queue.get('queued_requests', 0):,} / {queue.get('busy_instances', 0):,}",
                "-" if s is None or not s.execution_count else f"{s.inference_count / s.execution_count:.3g}",
            ]
        )
    head = [
        "Model",
        "Version",
        "Requests",
        "Req/s (5 min)",
        "Errors by status",
        "p50 (last min)",
        "p99 (last min)",
        "Queue / busy now",
        "Rows/batch",
    ]
    return table(head, out, "versions", empty="nothing loaded and no traffic in this range")


def _slos(services: Services) -> str:
    statuses = slo_statuses(services.traffic.store.db, services.settings, services.table.repository)
    rows = [
        [
            f"<b>{escape(s.model)}</b>",
            escape(s.kind) + ("" if s.threshold_s is None else f" ≤ {escape(fmt_value(s.threshold_s, 's'))}"),
            f"{s.objective:.3%}",
            f"{s.period_s / 86400:.3g} d",
            _pct(s.sli),
            _pct(s.budget_left),
            escape(", ".join(f"{k}: {'-' if v is None else f'{v:.3g}'}" for k, v in s.burn_rates.items())),
            escape(", ".join(s.alerts)) or "none",
        ]
        for s in statuses
    ]
    head = ["Model", "SLO", "Objective", "Period", "SLI", "Budget left", "Burn rates", "Alerts firing"]
    return table(head, rows, "slos", empty="no SLO is configured")


def _workers(services: Services, start: int, end: int) -> list[str]:
    rows = worker_minutes(services.traffic.store.db, start, end)
    by: dict[str, dict[int, tuple[float, int]]] = {}
    for w in rows:
        by.setdefault(w.worker, {})[w.minute] = (w.cpu_s, w.rss_bytes)
    cpu = [
        Series(name[:12], [(t, m[t][0] / 60 if t in m else None) for t in range(start, end)]) for name, m in by.items()
    ]
    rss = [
        Series(name[:12], [(t, m[t][1] / 2**20 if t in m else None) for t in range(start, end)])
        for name, m in by.items()
    ]
    latest = [
        [
            f"<b title='{escape(name)}'>{escape(name[:12])}</b>",
            f"{m[max(m)][0] / 60:.3g}",
            f"{m[max(m)][1] / 2**20:,.1f}",
        ]
        for name, m in sorted(by.items())
    ]
    return [
        table(["Worker", "CPU (cores, last minute)", "RSS MiB (last minute)"], latest, "workers", empty="no samples"),
        "<div class='charts'>",
        line_chart("CPU per worker (cores)", cpu, start, end),
        line_chart("Resident memory per worker (MiB)", rss, start, end),
        "</div>",
    ]


def _registry(services: Services) -> str:
    sync = services.sync
    if sync is None:
        return "<div class='sub' id='registry'>no registry source is configured (models come from the repository)</div>"
    s = sync.status()
    healthy = s.last_error is None and s.state != "starting"
    items = [
        ("Source", escape(s.source)),
        ("State", f"<span class='badge {'ok' if healthy else 'drift'}'>{escape(str(s.state))}</span>"),
        ("Leader", "yes" if s.leader else "no"),
        ("Last success", "never" if s.last_success_s_ago is None else f"{fmt_number(s.last_success_s_ago)} s ago"),
        ("Failed versions", f"{len(s.failed_versions)}"),
    ]
    error = f"<div class='error'>{escape(s.last_error)}</div>" if s.last_error else ""
    return f"<div id='registry'>{cards(items)}{error}</div>"


def render_operations(services: Services, hours: int) -> list[str]:
    """The view's body for the last ``hours`` hours; blocking (reads the store)."""
    services.traffic.flush()  # this process's last seconds of traffic are in the history too
    end = minute_of(time.time()) + 1
    start = end - hours * 60
    rows = version_minutes(services.traffic.store.db, start, end)
    requests = sum(m.requests for m in rows)
    failed = sum(sum(m.errors.values()) for m in rows)
    parts = [
        cards(
            [
                ("Models loaded", f"{len(services.table.loaded())}"),
                (f"Requests, last {hours} h", f"<span id='total-requests'>{requests:,}</span>"),
                ("Error answers", f"<span id='total-errors'>{failed:,}</span>"),
                ("Error rate", _pct(failed / requests if requests else None)),
            ]
        ),
        "<h2>Versions</h2>",
        _versions_table(services, rows, end - 5),
        "<h2>SLOs and error budgets</h2>",
        _slos(services),
    ]
    for name in sorted({m.model for m in rows}):
        parts += [
            f"<h2 id='model-{escape(name)}'>{escape(name)}</h2>",
            *_model_charts(name, [m for m in rows if m.model == name], start, end),
        ]
    parts += ["<h2>Workers</h2>", *_workers(services, start, end), "<h2>Registry sync</h2>", _registry(services)]
    return parts
