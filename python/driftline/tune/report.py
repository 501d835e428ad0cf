"""The tune report: ``report.html`` (an inline SVG of throughput vs the SLO percentile, and every measurement),
``tune.json`` (the `TuneResult` itself) and ``config.patch.toml``. Self-contained: no scripts, no external assets."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Final

import msgspec

from driftline.tune.recommend import best_point

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.tune.spec import Measurement, Percentile, Point, TuneResult

__all__ = ["write_report"]

WIDTH: Final = 900
HEIGHT: Final = 420
PAD: Final = 60

STYLE: Final = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.chosen{background:#d9f2d9;font-weight:bold}
tr.default{background:#e6eefc}tr.failed{color:#999}pre{background:#f4f4f4;padding:10px}
.meta td{text-align:left;border:none;padding:1px 8px}
"""


def _percentile(result: TuneResult) -> Percentile:
    return result.slo.percentile or "p99"


def _plot(result: TuneResult) -> str:
    """Every point as a dot (green: meets the SLO, grey: not), the chosen one ringed, the default's squared."""
    pct = _percentile(result)
    points = [(m, p) for m in result.measurements for p in m.points]
    if result.default is not None and result.default not in result.measurements:
        points += [(result.default, p) for p in result.default.points]
    if not points:
        return "<p>No points were measured.</p>"
    max_x = max([p.latency_ms(pct) for _, p in points] + [result.slo.limit_ms or 0.0]) * 1.1 or 1.0
    max_y = max([p.rps for _, p in points] + [result.slo.min_rps or 0.0]) * 1.1 or 1.0

    def xy(x: float, y: float) -> tuple[float, float]:
        return PAD + x / max_x * (WIDTH - 2 * PAD), HEIGHT - PAD - y / max_y * (HEIGHT - 2 * PAD)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">']
    out.append(f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>')
    x0, y0 = xy(0, 0)
    x1, y1 = xy(max_x, max_y)
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>')
    for i in range(6):
        tx, _ = xy(max_x * i / 5, 0)
        _, ty = xy(0, max_y * i / 5)
        out.append(f'<text x="{tx:.1f}" y="{y0 + 16}" font-size="11" text-anchor="middle">{max_x * i / 5:.2f}</text>')
        out.append(f'<text x="{x0 - 6}" y="{ty + 4:.1f}" font-size="11" text-anchor="end">{max_y * i / 5:.0f}</text>')
    out.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 18}" font-size="12" text-anchor="middle">{pct} latency (ms)</text>')
    out.append(
        f'<text x="14" y="{HEIGHT / 2}" font-size="12" transform="rotate(-90 14 {HEIGHT / 2})" '
        'text-anchor="middle">throughput (req/s)</text>'
    )
    if result.slo.limit_ms is not None:
        lx, _ = xy(result.slo.limit_ms, 0)
        out.append(f'<line x1="{lx:.1f}" y1="{y0}" x2="{lx:.1f}" y2="{y1}" stroke="#c00" stroke-dasharray="6 4"/>')
        out.append(
            # At the foot of the line, right-aligned: the legend sits at the top right.
            f'<text x="{lx - 4:.1f}" y="{y0 - 6}" font-size="11" fill="#c00" text-anchor="end">'
            f"SLO {escape(result.slo.describe())}</text>"
        )
    if result.slo.min_rps is not None:
        _, ly = xy(0, result.slo.min_rps)
        out.append(f'<line x1="{x0}" y1="{ly:.1f}" x2="{x1}" y2="{ly:.1f}" stroke="#c00" stroke-dasharray="6 4"/>')
    best = _chosen_point(result)
    for m, p in points:
        x, y = xy(p.latency_ms(pct), p.rps)
        title = escape(
            f"{m.candidate.label()} at {result.load.describe(p.level)}: {p.rps:.0f} req/s, "
            f"{pct} {p.latency_ms(pct):.2f} ms"
        )
        ok = result.slo.limit_ms is None or p.latency_ms(pct) <= result.slo.limit_ms
        colour = "#2a9d3a" if ok and not p.errors else "#999"
        if m is result.default or (result.default is not None and m.candidate == result.default.candidate):
            out.append(
                f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="none" stroke="#1f5fd1" '
                f'stroke-width="2"><title>default: {title}</title></rect>'
            )
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{title}</title></circle>')
        if best is not None and (m.candidate, p.level) == best:
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="none" stroke="#e07b00" stroke-width="3">'
                f"<title>chosen: {title}</title></circle>"
            )
    legend = [
        ("#2a9d3a", "meets the latency limit"),
        ("#999", "misses it"),
        ("#e07b00", "chosen (ring)"),
        ("#1f5fd1", "default configuration (square)"),
    ]
    for i, (colour, text) in enumerate(legend):
        out.append(
            f'<circle cx="{WIDTH - 230}" cy="{20 + i * 16}" r="5" fill="{colour}"/>'
            f'<text x="{WIDTH - 220}" y="{24 + i * 16}" font-size="11">{escape(text)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _chosen_point(result: TuneResult) -> tuple[object, float] | None:
    """(candidate, level) of the recommendation's point, from ``extra["chosen_level"]`` or the best by objective."""
    if result.recommended is None:
        return None
    for m in result.measurements:
        if m.candidate == result.recommended:
            p = best_point(m, result.slo, result.load)
            return (m.candidate, p.level) if p is not None else None
    return None


def _row(result: TuneResult, m: Measurement, p: Point | None, chosen: tuple[object, float] | None) -> str:
    label = m.candidate.label()
    is_default = result.default is not None and m.candidate == result.default.candidate
    if p is None:
        return (
            f'<tr class="failed" data-label="{escape(label)}"><td>{escape(label)}</td>'
            f'<td colspan="14">{escape(m.failed or "no points")}</td></tr>'
        )
    classes = [c for c, on in (("chosen", chosen == (m.candidate, p.level)), ("default", is_default)) if on]
    cells = [
        label + (" (default)" if is_default else ""),
        result.load.describe(p.level),
        f"{p.rps:.1f}",
        f"{p.rows_per_s:.1f}",
        f"{p.p50_ms:.2f}",
        f"{p.p90_ms:.2f}",
        f"{p.p99_ms:.2f}",
        str(p.errors),
        f"{p.server_cpu_ms_per_req:.3f}",
        f"{p.server_peak_rss_mib:.0f}",
        f"{p.generator_cpu:.2f}",
        "yes" if p.stable else "NO",
        "YES" if p.generator_limited else "no",
    ]
    body = "".join(f"<td>{escape(c)}</td>" for c in cells)
    return f'<tr class="{" ".join(classes)}" data-label="{escape(label)}" data-level="{p.level:g}">{body}</tr>'


def _points_or_none(m: Measurement) -> list[Point | None]:
    """A measurement's points, or one None (a row saying why it has none)."""
    return list(m.points) if m.points else [None]


def _html(result: TuneResult) -> str:
    chosen = _chosen_point(result)
    head = [
        "configuration",
        "load",
        "req/s",
        "rows/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "errors",
        "server CPU ms/req",
        "RSS MiB",
        "generator CPU",
        "stable",
        "generator-limited",
    ]
    rows = [_row(result, m, p, chosen) for m in result.ranked for p in _points_or_none(m)]
    if result.default is not None and result.default not in result.ranked:
        rows += [_row(result, result.default, p, chosen) for p in _points_or_none(result.default)]
    version = "" if result.version is None else f":{result.version}"
    rec = result.recommended.label() if result.recommended is not None else "none meets the SLO"
    margin = "" if result.margin_ms is None else f"{result.margin_ms:.2f} ms"
    meta = [
        ("model", f"{result.model}{version} ({result.backend})"),
        ("SLO", result.slo.describe()),
        ("load", ", ".join(result.load.describe(v) for v in result.load.levels)),
        (
            "search",
            f"{result.search}: {len(result.measurements)} of {result.points_in_space} points measured"
            + (" (budget exhausted)" if result.exhausted_budget else ""),
        ),
        ("recommended", rec),
        ("objective", "" if result.objective is None else f"{result.objective:.2f}"),
        ("margin", margin),
        ("serve flags", " ".join(result.serve_flags)),
        ("elapsed", f"{result.elapsed_s:.0f} s of a {result.budget_s:.0f} s budget"),
    ]
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.notes) or "<li>none</li>"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            f'<html lang="en"><head><meta charset="utf-8"><title>driftline tune: {escape(result.model)}</title>',
            f"<style>{STYLE}</style></head><body>",
            f"<h1>driftline tune: {escape(result.model + version)}</h1>",
            '<table class="meta">'
            + "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in meta)
            + "</table>",
            f"<h2>Throughput vs {_percentile(result)}</h2>",
            _plot(result),
            "<h2>Every measurement (best first)</h2>",
            "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>",
            *rows,
            "</table>",
            f"<h2>Notes</h2><ul>{notes}</ul>",
            f"<h2>config.toml patch</h2><pre>{escape(result.patch_toml)}</pre>",
            "</body></html>",
        ]
    )


def write_report(result: TuneResult, out: Path) -> list[Path]:
    """Write ``report.html``, ``tune.json`` and ``config.patch.toml`` into ``out`` (created); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    html, js, patch = out / "report.html", out / "tune.json", out / "config.patch.toml"
    html.write_text(_html(result))
    js.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2))
    patch.write_text(result.patch_toml)
    return [html, js, patch]
