"""The dashboard's one chart: lines (or stacked areas) over minutes, as inline SVG with axes, ticks and a legend.

Drawn on the server, so the pages need no JavaScript; every label is escaped. The look (colours, grid, fonts)
follows the drift and quality reports' charts (drift/html.py, feedback/html.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PALETTE", "Series", "fmt_value", "line_chart"]

PALETTE: Final = ("#5b7db8", "#e8833a", "#3a9d6a", "#b8505b", "#8a6bbf", "#c9a227", "#4fa3b8", "#7a7f8a")
_WIDTH, _HEIGHT, _LEFT, _RIGHT, _TOP, _BOTTOM = 560, 190, 52, 12, 10, 30
_Y_TICKS, _X_TICKS = 4, 6


@dataclass(frozen=True, slots=True)
class Series:
    """One line: ``points`` are (minute since the epoch, value), a None value leaving a gap; ``band`` an optional
    interval around it as (minute, low, high)."""

    label: str
    points: Sequence[tuple[int, float | None]]
    band: Sequence[tuple[int, float, float]] = field(default_factory=tuple)


def fmt_value(value: float, unit: str = "") -> str:
    """A tick or cell value: three significant digits, k/M for large counts, ms for sub-second seconds."""
    if unit == "s" and 0 < abs(value) < 1:
        return f"{value * 1e3:.3g} ms"
    if abs(value) >= 1e6:
        text = f"{value / 1e6:.3g}M"
    elif abs(value) >= 1e4:
        text = f"{value / 1e3:.3g}k"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip() if unit and unit != "%" else text + unit


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _stack(series: Sequence[Series]) -> tuple[list[Series], list[dict[int, float]]]:
    """Each series' points raised by the ones before it (stacked areas; a gap counts as 0), and the base each one
    sits on per minute (the top of the one before)."""
    totals: dict[int, float] = {}
    stacked, bases = [], []
    for s in series:
        bases.append(dict(totals))
        points = []
        for minute, value in s.points:
            totals[minute] = totals.get(minute, 0.0) + (value or 0.0)
            points.append((minute, totals[minute]))
        stacked.append(Series(s.label, points))
    return stacked, bases


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of a line (a None value ends one)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None or not math.isfinite(y):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def _time_label(minute: int, span: int) -> str:
    return time.strftime("%m-%d %H:%M" if span > 24 * 60 else "%H:%M", time.gmtime(minute * 60))


def line_chart(
    title: str,
    series: Sequence[Series],
    since_minute: int,
    until_minute: int,
    *,
    unit: str = "",
    stacked: bool = False,
) -> str:
    """A chart of ``series`` over the minutes ``[since_minute, until_minute)`` (UTC on the axis).

    ``unit`` labels the y axis ("s" shows seconds as ms below one); ``stacked`` draws stacked areas (shares,
    traffic per version) from 0 instead of lines. Without a finite value the chart says there is no data.
    """
    span = max(until_minute - since_minute, 1)
    lines, bases = _stack(series) if stacked else (list(series), [])
    values = [v for s in lines for v in _finite([p[1] for p in s.points])]
    values += [v for s in lines for _, low, high in s.band for v in _finite([low, high])]
    head = f'<figure class="chart" data-chart="{escape(title)}"><h3>{escape(title)}</h3>'
    if not values:
        return f'{head}<div class="meta">no data in this range</div></figure>'
    low, high = min(0.0, *values), max(values)
    if high - low < 1e-12:
        high = low + (abs(low) or 1.0)
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def x(minute: float) -> float:
        return _LEFT + plot_w * (minute - since_minute) / span

    def y(v: float) -> float:
        return _TOP + plot_h * (high - v) / (high - low)

    parts = [head, f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" width="100%" role="img" aria-label="{escape(title)}">']
    for k in range(_Y_TICKS + 1):
        v = low + (high - low) * k / _Y_TICKS
        parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eef0f3"/>')
        parts.append(f'<text x="{_LEFT - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{escape(fmt_value(v, unit))}</text>')
    for k in range(_X_TICKS + 1):
        minute = since_minute + round(span * k / _X_TICKS)
        anchor = "start" if k == 0 else "end" if k == _X_TICKS else "middle"
        parts.append(
            f'<text x="{x(minute):.1f}" y="{_HEIGHT - _BOTTOM + 14}" text-anchor="{anchor}">'
            f"{_time_label(minute, span)}</text>"
        )
    bottom = _TOP + plot_h
    for i, s in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        if s.band:
            edge = [f"{x(m):.1f},{y(hi):.1f}" for m, _, hi in s.band]
            edge += [f"{x(m):.1f},{y(lo):.1f}" for m, lo, _ in reversed(s.band)]
            parts.append(f'<polygon points="{" ".join(edge)}" fill="{colour}33" stroke="none"/>')
        for run in _runs([(float(m), v) for m, v in s.points]):
            pts = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in run)
            if stacked:
                base = " ".join(f"{x(m):.1f},{y(bases[i].get(int(m), 0.0)):.1f}" for m, _ in reversed(run))
                parts.append(f'<polygon points="{pts} {base}" fill="{colour}55" stroke="none"/>')
            if len(run) == 1:
                m, v = run[0]
                parts.append(f'<circle cx="{x(m):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>')
            else:
                parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
    parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#c7ccd4"/></svg>')
    legend = "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(s.label)}</span>'
        for i, s in enumerate(series)
    )
    parts.append(f'<figcaption class="legend">{legend}</figcaption></figure>')
    return "".join(parts)
