"""Renders an experiment's report as one self-contained HTML page: the decision (ready or not, and why), the
assignment counts and their sample-ratio check, the rules, and per metric its arms, each treatment's difference
with its intervals and verdict, and the confidence sequence over time as an inline SVG chart. The page shell and
styles are drift/html.py's; every name a user chose (model, experiment, arms, metrics) is escaped.
"""

from __future__ import annotations

import math
from datetime import timedelta
from html import escape
from typing import TYPE_CHECKING, Final

from driftline.drift.html import cards, fmt_number, page

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.experiments.decisions import RuleResult
    from driftline.experiments.numbers import Bounds, Look, MetricReport, Versus
    from driftline.experiments.report import ExperimentReport, SampleRatioCheck

__all__ = ["render"]

# Verdicts in drift/html.py's badge colours.
_CLASS: Final = {
    "better": "ok",
    "worse": "drift",
    "inconclusive": "insufficient_data",
    "insufficient": "insufficient_data",
}
_LINE, _BAND, _ZERO = "#5b7db8", "#5b7db833", "#b42318"
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 720, 190, 56, 10, 10, 30


def _badge(text: str, css: str) -> str:
    return f'<span class="badge {css}">{escape(text)}</span>'


def _bounds(b: Bounds | None, percent: bool = False) -> str:
    if b is None:
        return "-"
    if percent:
        return f"{_pct(b.estimate)} <span class='sub'>[{_pct(b.lower)}, {_pct(b.upper)}]</span>"
    return f"{fmt_number(b.estimate)} <span class='sub'>[{fmt_number(b.lower)}, {fmt_number(b.upper)}]</span>"


def _pct(x: float) -> str:
    return f"{x:+.2%}" if math.isfinite(x) else fmt_number(x)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _rules(rules: Sequence[RuleResult]) -> str:
    rows = [
        [escape(r.text), _badge("pass" if r.passed else "fail", "ok" if r.passed else "drift"), escape(r.evidence)]
        for r in rules
    ]
    return _table(["Rule", "Now", "Evidence"], rows)


def _srm(srm: SampleRatioCheck | None, assignments: dict[str, int]) -> list[str]:
    if srm is None:
        counts = ", ".join(f"{escape(a)} {n:,}" for a, n in assignments.items())
        return [
            f'<div class="sub">Shadow design: both arms answer the same requests, no sample ratio to check '
            f"({counts} routed requests).</div>"
        ]
    rows = [[escape(arm), f"{srm.observed[arm]:,}", f"{srm.expected.get(arm, 0.0):,.1f}"] for arm in srm.observed]
    verdict = _badge("mismatch" if srm.flagged else "ok", "drift" if srm.flagged else "ok")
    note = f"χ² {srm.chi2:.3f}, p = {fmt_number(srm.p_value)} (flagged below 0.001) {verdict}"
    return [_table(["Arm", "Assigned", "Expected"], rows), f'<div class="sub">{note}</div>']


def _chart(metric: str, arm: str, looks: Sequence[Look]) -> str:
    """The difference's interval at each look as a band around its estimate, and the zero line."""
    finite = [v for k in looks for v in (k.estimate, k.lower, k.upper) if math.isfinite(v)]
    if not finite:
        return '<div class="sub">not enough data for an interval yet</div>'
    low, high = min([*finite, 0.0]), max([*finite, 0.0])
    if high - low < 1e-12:
        low, high = low - 1.0, high + 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = plot_w / len(looks)

    def x(i: int) -> float:
        return _LEFT + slot * (i + 0.5)

    def y(v: float) -> float:
        v = min(max(v, low), high)  # an unbounded end is drawn at the chart's edge
        return _TOP + plot_h * (high - v) / (high - low)

    label = escape(f"{metric}: {arm} minus control over time")
    out = [f'<svg viewBox="0 0 {_W} {_H}" width="100%" role="img" aria-label="{label}">']
    for tick in range(5):
        v = low + (high - low) * tick / 4
        out.append(f'<text x="{_LEFT - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v:.3g}</text>')
    top = [f"{x(i):.1f},{y(k.upper):.1f}" for i, k in enumerate(looks)]
    bottom = [f"{x(i):.1f},{y(k.lower):.1f}" for i, k in reversed(list(enumerate(looks)))]
    out.append(f'<polygon points="{" ".join(top + bottom)}" fill="{_BAND}" stroke="none"/>')
    line = " ".join(f"{x(i):.1f},{y(k.estimate):.1f}" for i, k in enumerate(looks) if math.isfinite(k.estimate))
    out.append(f'<polyline points="{line}" fill="none" stroke="{_LINE}" stroke-width="2"/>')
    out.append(
        f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{_ZERO}" '
        'stroke-dasharray="4 3"/>'
    )
    for i, k in enumerate(looks):
        tip = (
            f"{k.at:%Y-%m-%d %H:%M}: {fmt_number(k.estimate)} [{fmt_number(k.lower)}, {fmt_number(k.upper)}], n={k.n:,}"
        )
        out.append(
            f'<circle cx="{x(i):.1f}" cy="{y(k.estimate):.1f}" r="2.5" fill="{_LINE}"><title>{escape(tip)}'
            "</title></circle>"
        )
    step = max(1, math.ceil(len(looks) / 6))
    last = len(looks) - 1
    marks = list(range(0, last + 1, step))
    if marks[-1] != last:  # the last look is always labeled; a mark too close before it would overlap it
        marks = [*(m for m in marks if last - m >= step), last]
    # Seconds matter in an experiment shorter than an hour (every look would read the same minute).
    short = looks[last].at - looks[0].at < timedelta(hours=1)
    for i in marks:
        at = looks[i].at
        text = f"{at:%H:%M:%S}" if short else f"{at:%m-%d %H:%M}"
        out.append(f'<text x="{x(i):.1f}" y="{_H - _BOTTOM + 14}" text-anchor="middle">{text}</text>')
    out.append("</svg>")
    return "".join(out)


def _comparison(v: Versus) -> list[str]:
    p = "-" if v.p_value is None else fmt_number(v.p_value)
    adjusted = "-" if v.adjusted_p_value is None else fmt_number(v.adjusted_p_value)
    return [
        f"<b>{escape(v.arm)}</b>{' (paired)' if v.paired else ''}",
        _bounds(v.absolute),
        _bounds(v.relative, percent=True),
        _bounds(v.fixed_absolute),
        _bounds(v.fixed_relative, percent=True),
        p,
        adjusted,
        _badge(v.verdict, _CLASS[v.verdict]),
    ]


def _metric(m: MetricReport, level: str) -> list[str]:
    head = f"{escape(m.name)} <span class='sub'>{escape(m.kind)} · {m.direction} is better · {m.role}</span>"
    verdicts = " ".join(_badge(v.verdict, _CLASS[v.verdict]) for v in m.comparisons)
    value = "p99 (ms)" if m.kind == "latency_p99" and not any(v.paired for v in m.comparisons) else "Mean"
    arms = [
        [
            f"<b>{escape(a.arm)}</b>",
            f"v{a.version}",
            f"{a.n:,}",
            fmt_number(a.mean),
            f"[{fmt_number(a.interval.lower)}, {fmt_number(a.interval.upper)}]",
        ]
        for a in m.arms
    ]
    parts = [
        f'<section class="metric" id="metric-{escape(m.name)}"><h2>{head} {verdicts}</h2>',
        _table(["Arm", "Version", f"{escape(m.unit).capitalize()}s", value, f"{level} interval"], arms),
        _table(
            [
                "Treatment",
                "Difference (sequential)",
                "Relative (sequential)",
                "Difference (fixed)",
                "Relative (fixed)",
                "p",
                "Adjusted p",
                "Verdict",
            ],
            [_comparison(v) for v in m.comparisons],
        ),
    ]
    for v in m.comparisons:
        parts.append(
            f'<div class="chart"><h3>{escape(v.arm)} minus control, {level} interval at each look</h3>'
            f'<div class="meta">{escape(v.method)}</div>{_chart(m.name, v.arm, v.history)}</div>'
        )
    parts.append("</section>")
    return parts


def render(report: ExperimentReport) -> str:
    """The report as a standalone HTML document (no external scripts, styles or fonts)."""
    e = report.experiment
    spec = e.spec
    level = f"{spec.confidence:.1%}".replace(".0%", "%")
    window = f"{e.started_at:%Y-%m-%d %H:%M} to {report.as_of:%Y-%m-%d %H:%M} UTC"
    arms = ", ".join(f"{escape(a.name)} = v{e.versions.get(a.name, '?')}" for a in spec.arms)
    ready = _badge("ready" if report.ready else "not ready", "ok" if report.ready else "drift")
    parts = [
        f'<div class="sub">experiment {e.id} · {escape(e.state)} · {escape(spec.design.kind)} · {arms} · '
        f"{window}</div>",
        cards(
            [
                ("Decision", ready),
                ("Primary", escape(spec.primary)),
                ("Guardrails breached", escape(", ".join(report.breached)) or "none"),
                *((f"{escape(a)} assigned", f"{n:,}") for a, n in report.assignments.items()),
            ]
        ),
    ]
    if e.stop_reason:
        parts.append(f'<div class="sub">stopped: {escape(e.stop_reason)}</div>')
    parts += ["<h2>Sample ratio</h2>", *_srm(report.sample_ratio, report.assignments)]
    parts += ["<h2>Promotion rules</h2>", _rules(report.rules)]
    for m in report.metrics:
        parts += _metric(m, level)
    return page(f"Experiment {spec.name} · {e.model}", parts)
