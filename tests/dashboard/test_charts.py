"""The dashboard's chart: valid SVG with axes and a legend, gaps where values are missing, stacked areas summed,
every label escaped, and an empty chart that says so."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from driftline.dashboard.charts import Series, fmt_value, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def _svg(html: str) -> ET.Element:
    svg = re.search(r"<svg.*</svg>", html, re.S)
    assert svg is not None, html
    return ET.fromstring(svg.group(0).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def _points(element: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in element.attrib["points"].split()]


def test_a_line_over_minutes_has_axes_ticks_and_a_legend():
    start = 29_000_000  # minutes since the epoch
    html = line_chart("iris: requests/s", [Series("v1", [(start + i, float(i)) for i in range(60)])], start, start + 60)
    svg = _svg(html)
    (line,) = svg.iter(f"{SVG}polyline")
    points = _points(line)
    assert len(points) == 60
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs)  # time goes right
    assert ys == sorted(ys, reverse=True)  # larger values go up
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "0" in labels  # the y axis spans 0 .. the peak
    assert "59" in labels
    assert sum(bool(re.fullmatch(r"\d\d:\d\d", t or "")) for t in labels) == 7  # seven time ticks
    assert "iris: requests/s" in html
    assert ">v1</span>" in html


def test_a_missing_value_breaks_the_line():
    points = [(0, 1.0), (1, 2.0), (2, None), (3, 2.0), (4, 1.0), (5, None), (6, 3.0)]
    svg = _svg(line_chart("gaps", [Series("a", points)], 0, 7))
    assert [len(_points(p)) for p in svg.iter(f"{SVG}polyline")] == [2, 2]
    assert len(list(svg.iter(f"{SVG}circle"))) == 1  # a lone point is a dot


def test_a_band_and_units_are_drawn():
    html = line_chart(
        "latency", [Series("p99", [(0, 0.002), (1, 0.004)], [(0, 0.001, 0.003), (1, 0.003, 0.005)])], 0, 2, unit="s"
    )
    svg = _svg(html)
    (band,) = svg.iter(f"{SVG}polygon")
    assert len(_points(band)) == 4
    assert "5 ms" in [t.text for t in svg.iter(f"{SVG}text")]
    assert fmt_value(2.5, "s") == "2.5 s"
    assert fmt_value(0.0125, "s") == "12.5 ms"
    assert fmt_value(0.25, "%") == "0.25%"
    assert fmt_value(12_345) == "12.3k"
    assert fmt_value(2e6) == "2M"


def test_stacked_areas_sum_the_series():
    a, b = Series("v1", [(0, 1.0), (1, 1.0)]), Series("v2", [(0, 3.0), (1, None)])
    svg = _svg(line_chart("share", [a, b], 0, 2, stacked=True))
    lines = [_points(p) for p in svg.iter(f"{SVG}polyline")]
    top_of_v1, top_of_v2 = lines[0][0][1], lines[1][0][1]
    assert top_of_v2 < top_of_v1  # v2 sits on v1: 4 is higher than 1
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "4" in labels  # the axis reaches the stacked total
    v1_area, v2_area = (_points(p) for p in svg.iter(f"{SVG}polygon"))
    assert v2_area[len(lines[1]) :] == lines[0][::-1]  # v2's area sits on v1's top, not on the axis
    assert {y for _, y in v1_area[len(lines[0]) :]} == {max(y for _, y in v1_area)}  # v1's sits on the axis


def test_labels_are_escaped_and_an_empty_chart_says_so():
    html = line_chart("<b>x</b>", [Series("<script>", [(0, None)])], 0, 1)
    assert "<script>" not in html
    assert "<b>x</b>" not in html
    assert "no data in this range" in html
    html = line_chart("t", [Series("<i>v</i>", [(0, 1.0), (1, 1.0)])], 0, 2)
    assert "&lt;i&gt;v&lt;/i&gt;" in html
    _svg(html)  # a flat line still gives an axis
