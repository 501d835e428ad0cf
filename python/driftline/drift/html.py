"""Renders a drift report as one self-contained HTML page: summary, feature table, inline SVG histograms.

The renderer states what it reads as protocols, which `drift.report`'s Structs meet, so the report can offer
``to_html()`` by importing this module without this module importing it back.
"""

from __future__ import annotations

import math
import time
from html import escape
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PAGE_CSS", "FeatureView", "HistogramView", "ReportView", "cards", "fmt_number", "page", "render"]


class HistogramView(Protocol):
    """The counts one chart draws (a `drift.report.Histogram`)."""

    @property
    def labels(self) -> Sequence[str]: ...
    @property
    def reference(self) -> Sequence[int]: ...
    @property
    def current(self) -> Sequence[int]: ...
    @property
    def edges(self) -> Sequence[float] | None: ...


class FeatureView(Protocol):
    """One feature's row and chart (a `drift.report.FeatureDrift`)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def stat(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def pvalue(self) -> float | None: ...
    @property
    def threshold(self) -> float: ...
    @property
    def verdict(self) -> str: ...
    @property
    def n_ref(self) -> int: ...
    @property
    def n_cur(self) -> int: ...
    @property
    def nan_ref(self) -> int: ...
    @property
    def nan_cur(self) -> int: ...
    @property
    def sampled(self) -> bool: ...
    @property
    def histogram(self) -> HistogramView | None: ...


class ReportView(Protocol):
    """The page's header and its features (a `drift.report.DriftReport`)."""

    @property
    def features(self) -> Sequence[FeatureView]: ...
    @property
    def verdict(self) -> str: ...
    @property
    def drift_share(self) -> float: ...
    @property
    def drifted_share(self) -> float: ...
    @property
    def n_drifted(self) -> int: ...
    @property
    def preset(self) -> str: ...
    @property
    def binning(self) -> str: ...
    @property
    def n_ref_rows(self) -> int: ...
    @property
    def n_cur_rows(self) -> int: ...
    @property
    def model(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def created(self) -> float: ...


_REF, _CUR = "#5b7db8", "#e8833a"
_MAX_BARS = 30

PAGE_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f5f6f8;color:#1f2430;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 12px}
.sub{color:#667085;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:18px 0}
.card{background:#fff;border:1px solid #e4e7ec;border-radius:10px;padding:12px 16px;min-width:150px}
.card .k{color:#667085;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600;margin-top:2px}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e7ec;
 border-radius:10px;overflow:hidden}
th,td{padding:8px 12px;text-align:left;border-bottom:1px solid #eef0f3}
th,td.num{white-space:nowrap}
th{background:#fafbfc;color:#475467;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:none}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600}
.drift{background:#fde7e7;color:#b42318}.ok{background:#e3f6ea;color:#067647}
.insufficient_data{background:#eef0f3;color:#475467}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
.chart{background:#fff;border:1px solid #e4e7ec;border-radius:10px;padding:12px 14px}
.chart h3{font-size:14px;margin:0 0 2px;display:flex;justify-content:space-between;align-items:center}
.chart .meta{color:#667085;font-size:12px;margin-bottom:6px}
.legend{font-size:12px;color:#475467;margin:6px 0 14px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;
 margin:0 5px 0 12px;vertical-align:-1px}
svg text{font:10px system-ui,sans-serif;fill:#667085}
"""


def fmt_number(x: float | None) -> str:
    """A number for a table cell: 4 decimals, scientific when tiny or huge; ``-`` for None, ``n/a`` for NaN."""
    if x is None:
        return "-"
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.3e}"
    return f"{x:.4f}"


def _badge(verdict: str) -> str:
    text = "insufficient data" if verdict == "insufficient_data" else verdict
    return f'<span class="badge {verdict}">{escape(text)}</span>'


def _limit(h: HistogramView) -> tuple[Sequence[str], Sequence[int], Sequence[int], int]:
    """Keep charts readable: categorical histograms show their _MAX_BARS largest categories."""
    if len(h.labels) <= _MAX_BARS:
        return h.labels, h.reference, h.current, 0
    order = sorted(range(len(h.labels)), key=lambda i: -(h.reference[i] + h.current[i]))[:_MAX_BARS]
    order.sort()
    return (
        [h.labels[i] for i in order],
        [h.reference[i] for i in order],
        [h.current[i] for i in order],
        len(h.labels) - _MAX_BARS,
    )


def _svg(h: HistogramView) -> str:
    labels, ref, cur, hidden = _limit(h)
    width, height, left, bottom, top = 340, 176, 36, 46, 8
    plot_w, plot_h = width - left - 6, height - bottom - top
    ref_total, cur_total = max(sum(h.reference), 1), max(sum(h.current), 1)
    p_ref = [r / ref_total for r in ref]
    p_cur = [c / cur_total for c in cur]
    peak = max([*p_ref, *p_cur, 1e-12])
    n = max(len(labels), 1)
    slot = plot_w / n
    bar = max(slot * 0.38, 1.0)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        'aria-label="reference vs current" style="overflow:visible">'
    ]
    for k in range(5):
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f3"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{peak * k / 4:.0%}</text>')
    step = max(1, math.ceil(n / 10))
    if h.edges is not None and len(h.edges) == n - 1:
        # Numeric bins: label the edges between bars, like a histogram axis.
        tick = max(1, math.ceil(len(h.edges) / 6))
        for k, edge in enumerate(h.edges):
            if k % tick == 0:
                x = left + (k + 1) * slot
                parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 13}" text-anchor="middle">{edge:.3g}</text>')
    for i, label in enumerate(labels):
        x = left + i * slot + slot / 2
        for value, colour, dx in ((p_ref[i], _REF, -bar), (p_cur[i], _CUR, 0.0)):
            bh = plot_h * value / peak
            parts.append(
                f'<rect x="{x + dx:.1f}" y="{top + plot_h - bh:.1f}" width="{bar:.1f}" height="{bh:.1f}" '
                f'rx="1.5" fill="{colour}"><title>{escape(label)}: {value:.1%}</title></rect>'
            )
        if h.edges is None and i % step == 0:
            short = label if len(label) <= 14 else label[:13] + "…"
            parts.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 12}" text-anchor="end" '
                f'transform="rotate(-30 {x:.1f} {top + plot_h + 12})">{escape(short)}</text>'
            )
    parts.append(f'<line x1="{left}" x2="{width - 6}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#c7ccd4"/></svg>')
    if hidden:
        parts.append(f'<div class="meta">{hidden} smaller categories not shown</div>')
    return "".join(parts)


def _row(f: FeatureView) -> str:
    cells = [
        f"<td><b>{escape(f.name)}</b></td>",
        f"<td>{escape(f.kind)}</td>",
        f"<td>{escape(f.stat)}{' *' if f.sampled else ''}</td>",
        f'<td class="num">{fmt_number(f.value)}</td>',
        f'<td class="num">{fmt_number(f.pvalue)}</td>',
        f'<td class="num">{"p &lt; " if f.pvalue is not None else "≥ "}{fmt_number(f.threshold)}</td>',
        f"<td>{_badge(f.verdict)}</td>",
        f'<td class="num">{f.n_ref:,} / {f.nan_ref:,}</td>',
        f'<td class="num">{f.n_cur:,} / {f.nan_cur:,}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _chart(f: FeatureView) -> str:
    if f.histogram is None:
        return ""
    value = f"{f.stat} = {fmt_number(f.value)}"
    if f.pvalue is not None:
        value += f", p = {fmt_number(f.pvalue)}"
    return (
        f'<div class="chart"><h3>{escape(f.name)} {_badge(f.verdict)}</h3>'
        f'<div class="meta">{escape(f.kind)} · {escape(value)}</div>{_svg(f.histogram)}</div>'
    )


def cards(items: Sequence[tuple[str, str]]) -> str:
    """A row of headline cards, each a (label, value HTML) pair; the caller escapes what the value holds."""
    body = "".join(f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in items)
    return f'<div class="cards">{body}</div>'


def page(title: str, parts: Sequence[str]) -> str:
    """A standalone HTML document (no external scripts, styles or fonts): ``title`` (escaped) as its title and
    heading, then ``parts`` (HTML)."""
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>{escape(title)}</title><style>{PAGE_CSS}</style></head><body><main>",
            f"<h1>{escape(title)}</h1>",
            *parts,
            "</main></body></html>",
        ]
    )


def render(report: ReportView, title: str | None = None) -> str:
    """The report as a standalone HTML document (no external scripts, styles or fonts).

    Args:
        report: The report.
        title: Page title; default names the model and version.

    Returns:
        The HTML text.
    """
    who = " ".join(x for x in (report.model, f"v{report.version}" if report.version else None) if x)
    title = title or (f"Drift report · {who}" if who else "Drift report")
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.created or time.time()))
    headline = [
        ("Dataset", _badge(report.verdict)),
        ("Drifted features", f"{report.n_drifted} / {len(report.features)}"),
        (
            "Drifted share",
            f"{report.drifted_share:.0%} <span class='sub'>(≥ {report.drift_share:.0%})</span>",
        ),
        ("Reference rows", f"{report.n_ref_rows:,}"),
        ("Current rows", f"{report.n_cur_rows:,}"),
    ]
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Feature",
            "Kind",
            "Statistic",
            "Value",
            "p-value",
            "Threshold",
            "Verdict",
            "Ref n / NaN",
            "Cur n / NaN",
        )
    )
    sampled = any(f.sampled for f in report.features)
    return page(
        title,
        [
            f'<div class="sub">{created} · preset {escape(report.preset)} · binning {escape(report.binning)}</div>',
            cards(headline),
            "<h2>Features</h2>",
            f"<table><thead><tr>{head}</tr></thead><tbody>",
            *(_row(f) for f in report.features),
            "</tbody></table>",
            '<div class="sub">* computed on a uniform sample of the current window</div>' if sampled else "",
            "<h2>Distributions</h2>",
            f'<div class="legend">share of rows per bin<i style="background:{_REF}"></i>reference'
            f'<i style="background:{_CUR}"></i>current</div>',
            '<div class="grid">',
            *(_chart(f) for f in report.features),
            "</div>",
        ],
    )
