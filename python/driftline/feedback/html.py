"""Renders a live quality report as one self-contained HTML page: per version, the headline metrics with their
intervals and label coverage, an inline SVG chart of the main metric (accuracy, or MAE) and its interval band over
the windows, the windows' table and the confusion matrix. The page shell and styles are drift/html.py's.

Every string a model or its labels bring (the model name, class labels) is escaped.
"""

from __future__ import annotations

import math
import time
from html import escape
from typing import TYPE_CHECKING

from driftline.drift.html import cards, fmt_number, page
from driftline.quality import ClassificationQuality

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.feedback.report import QualityReport, VersionQuality, WindowQuality
    from driftline.quality import Estimate, RegressionQuality

__all__ = ["main_metric", "render_quality"]

_LINE, _BAND = "#5b7db8", "#5b7db833"
_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP, _RIGHT = 720, 200, 48, 34, 10, 10


def main_metric(quality: ClassificationQuality | RegressionQuality) -> tuple[str, Estimate]:
    """The metric a chart follows: a classifier's accuracy, a regressor's MAE."""
    if isinstance(quality, ClassificationQuality):
        return "accuracy", quality.accuracy
    return "MAE", quality.mae


def _headline(quality: ClassificationQuality | RegressionQuality) -> list[tuple[str, Estimate]]:
    if isinstance(quality, ClassificationQuality):
        rows = [
            ("accuracy", quality.accuracy),
            ("precision (macro)", quality.precision_macro),
            ("recall (macro)", quality.recall_macro),
            ("F1 (macro)", quality.f1_macro),
        ]
        if quality.log_loss is not None:
            rows.append(("log loss", quality.log_loss))
        if quality.roc_auc is not None:
            rows.append((f"ROC AUC (positive {quality.positive!r})", quality.roc_auc))
        return rows
    return [("MAE", quality.mae), ("RMSE", quality.rmse), ("MAPE", quality.mape), ("R²", quality.r2)]


def _interval(e: Estimate) -> str:
    return f"[{fmt_number(e.lower)}, {fmt_number(e.upper)}]"


def _metrics_table(quality: ClassificationQuality | RegressionQuality) -> str:
    rows = "".join(
        f"<tr><td><b>{escape(name)}</b></td><td class='num'>{fmt_number(e.value)}</td>"
        f"<td class='num'>{_interval(e)}</td><td class='num'>{e.n:,}</td><td>{e.method}</td></tr>"
        for name, e in _headline(quality)
    )
    level = f"{quality.confidence:.0%}" if quality.confidence >= 0.01 else f"{quality.confidence:.2g}"
    head = f"<tr><th>Metric</th><th>Value</th><th>{level} interval</th><th>n</th><th>Interval</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _classes_table(quality: ClassificationQuality) -> str:
    head = "<tr><th>Class</th><th>Support</th><th>Precision</th><th>Recall</th><th>F1</th></tr>"
    rows = "".join(
        f"<tr><td><b>{escape(str(c.label))}</b></td><td class='num'>{c.support:,}</td>"
        + "".join(
            f"<td class='num'>{fmt_number(e.value)} <span class='sub'>{_interval(e)}</span></td>"
            for e in (c.precision, c.recall, c.f1)
        )
        + "</tr>"
        for c in quality.classes
    )
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _confusion_table(quality: ClassificationQuality) -> str:
    labels = [escape(str(label)) for label in quality.confusion.labels]
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{label}</th>" for label in labels) + "</tr>"
    rows = "".join(
        f"<tr><td><b>{label}</b></td>" + "".join(f"<td class='num'>{count:,}</td>" for count in counts) + "</tr>"
        for label, counts in zip(labels, quality.confusion.counts, strict=True)
    )
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _finite(*values: float) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _chart(name: str, windows: Sequence[WindowQuality]) -> str:
    """The main metric per window as a line over its interval band; a window without labels leaves a gap."""
    points = [(i, main_metric(w.quality)[1]) for i, w in enumerate(windows) if w.quality is not None]
    values = [v for _, e in points for v in _finite(e.value, e.lower, e.upper)]
    if not values:
        return '<div class="sub">no labeled window yet</div>'
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(len(windows), 1)

    def x(i: int) -> float:
        return _LEFT + slot * (i + 0.5)

    def y(v: float) -> float:
        return _TOP + plot_h * (high - v) / (high - low)

    parts = [f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" width="100%" role="img" aria-label="{escape(name)} per window">']
    for k in range(5):
        v = low + (high - low) * k / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eef0f3"/>')
        parts.append(f'<text x="{_LEFT - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v:.3g}</text>')
    band = [(i, e) for i, e in points if math.isfinite(e.lower) and math.isfinite(e.upper)]
    if band:
        upper = [f"{x(i):.1f},{y(e.upper):.1f}" for i, e in band]
        edge = upper + [f"{x(i):.1f},{y(e.lower):.1f}" for i, e in band[::-1]]
        parts.append(f'<polygon points="{" ".join(edge)}" fill="{_BAND}" stroke="none"/>')
    line = [f"{x(i):.1f},{y(e.value):.1f}" for i, e in points if math.isfinite(e.value)]
    parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{_LINE}" stroke-width="2"/>')
    for i, e in points:
        if math.isfinite(e.value):
            w = windows[i]
            tip = f"{w.start:%Y-%m-%d %H:%M}: {fmt_number(e.value)} {_interval(e)}, {w.labeled:,} labeled"
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(e.value):.1f}" r="3" fill="{_LINE}"><title>{escape(tip)}</title>'
                "</circle>"
            )
    tick = max(1, math.ceil(len(windows) / 8))
    for i, w in enumerate(windows):
        if i % tick == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{_HEIGHT - _BOTTOM + 14}" text-anchor="middle">{w.start:%m-%d %H:%M}</text>'
            )
    bottom = _HEIGHT - _BOTTOM
    parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#c7ccd4"/></svg>')
    return "".join(parts)


def _windows_table(name: str, windows: Sequence[WindowQuality]) -> str:
    head = (
        f"<tr><th>Start</th><th>End</th><th>Captured</th><th>Labeled</th><th>Coverage</th><th>{escape(name)}</th>"
        "<th>Interval</th></tr>"
    )
    rows = []
    for w in windows:
        e = None if w.quality is None else main_metric(w.quality)[1]
        rows.append(
            f"<tr><td>{w.start.isoformat()}</td><td>{w.end.isoformat()}</td><td class='num'>{w.captured:,}</td>"
            f"<td class='num'>{w.labeled:,}</td><td class='num'>{w.coverage:.1%}</td>"
            f"<td class='num'>{fmt_number(None if e is None else e.value)}</td>"
            f"<td class='num'>{'-' if e is None else _interval(e)}</td></tr>"
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _version(v: VersionQuality, task: str) -> list[str]:
    parts = [
        f"<h2>Version {v.version}</h2>",
        cards(
            [
                ("Captured rows", f"{v.captured:,}"),
                ("Labeled rows", f"{v.labeled:,}"),
                ("Label coverage", f"{v.coverage:.1%}"),
                ("Windows", f"{len(v.windows):,}"),
            ]
        ),
    ]
    if v.overall is None:
        parts.append('<div class="sub">no captured row of this version has a label yet</div>')
        return parts
    name = main_metric(v.overall)[0]
    parts += [
        _metrics_table(v.overall),
        f"<h3>{escape(name)} per window</h3>",
        f'<div class="chart">{_chart(name, v.windows)}</div>',
        _windows_table(name, v.windows),
    ]
    if task == "classification" and isinstance(v.overall, ClassificationQuality):
        parts += ["<h3>Per class</h3>", _classes_table(v.overall)]
        parts += ["<h3>Confusion matrix</h3>", _confusion_table(v.overall)]
    return parts


def render_quality(report: QualityReport, model: str, created: float | None = None) -> str:
    """The report of ``model`` as a standalone HTML document (no external scripts, styles or fonts)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(created or time.time()))
    parts = [
        f'<div class="sub">{stamp} · {escape(report.task)} · {report.unmatched:,} label(s) name no captured row</div>'
    ]
    if not report.versions:
        parts.append('<div class="sub">no captured rows (is capture on for this model?)</div>')
    for v in report.versions:
        parts += _version(v, report.task)
    return page(f"Quality · {model}", parts)
