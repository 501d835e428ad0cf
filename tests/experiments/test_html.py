"""render() parsed with html.parser: the decision, the sample ratio, the rules, per metric its arms, the
comparison, the verdict and the interval over time as SVG; names escaped, nothing fetched from elsewhere."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

from tests.experiments.test_report import (
    CONVERSION,
    ERRORS,
    LATENCY,
    conversions,
    data_of,
    experiment_of,
    spec_of,
    totals,
)

from driftline.experiments.html import render
from driftline.experiments.report import build_report
from driftline.experiments.spec import Design, Metric


class Page(HTMLParser):
    """Tags, attributes, text, per-section text and table rows of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.rows: list[list[str]] = []
        self._section: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "section":
            self._section = found.get("id")
            self.sections[self._section or ""] = []
        elif tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._section is not None:
            self.sections[self._section].append(data)
        if self._cell is not None:
            self._cell.append(data)

    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def row(self, first: str) -> list[str]:
        return next(r for r in self.rows if r and r[0].startswith(first))


def _report(spec, data):
    return build_report(experiment_of(spec), data, data.end)


def test_the_page_shows_the_decision_rules_srm_and_every_metric():
    spec = spec_of(CONVERSION, ERRORS, LATENCY, guardrails=["error_rate", "latency"])
    traffic = {"control": totals(10_000, 100, 0.010), "treatment": totals(10_000, 300, 0.010)}
    report = _report(spec, data_of(spec, conversions(0.10, 0.15, 5000), traffic=traffic))
    page = Page(render(report))
    text = page.all_text()
    assert "Experiment exp · m" in text
    assert "not ready" in text
    assert "Guardrails breached error_rate" in " ".join(text.split())
    # The sample ratio: the counts per arm against the design's expectation.
    assert page.row("control")[1:] == ["10,000", "10,000.0"]
    assert "flagged below 0.001" in text
    # The rules, each with whether it holds and its evidence.
    rule = page.row("conversion: better than control")
    assert rule[1] == "pass"
    assert rule[2].startswith("difference ")
    # One section per metric: arms, the comparison with its verdict, a chart of the interval over time.
    assert set(page.sections) == {"metric-conversion", "metric-error_rate", "metric-latency"}
    errors = " ".join(" ".join(page.sections["metric-error_rate"]).split())
    assert "worse" in errors
    assert "guardrail" in errors
    assert "decrease is better" in errors
    conversion = " ".join(page.sections["metric-conversion"])
    assert "better" in conversion
    assert "Difference (sequential)" in conversion
    assert "Difference (fixed)" in conversion
    svgs = [a for t, a in page.tags if t == "svg"]
    assert len(svgs) == 3
    assert all("over time" in (a.get("aria-label") or "") for a in svgs)
    assert len([t for t, _ in page.tags if t == "polygon"]) == 3  # the interval bands
    assert "p99 (ms)" in " ".join(page.sections["metric-latency"])


def test_nothing_is_fetched_and_user_names_are_escaped():
    hostile = Metric(name="<script>alert(1)</script>", kind="kpi", direction="increase")
    spec = spec_of(hostile, design=Design(shadow=20))
    data = data_of(spec, {hostile.name: conversions(0.1, 0.1, 50)["conversion"]})
    html = render(_report(spec, data))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    page = Page(html)
    assert not any(t in ("script", "link", "img", "iframe") for t, _ in page.tags)
    assert not any(k in ("src", "href") for _, attrs in page.tags for k in attrs)
    assert "no sample ratio to check" in page.all_text()  # a shadow: both arms answer every request


def test_a_metric_without_data_says_so_instead_of_a_chart():
    spec = spec_of(CONVERSION)
    page = Page(render(_report(spec, data_of(spec))))
    assert "not enough data for an interval yet" in page.all_text()
    assert page.row("conversion: better than control")[1] == "fail"


def test_the_time_axis_labels_the_last_look_once_and_never_overlaps():
    spec = spec_of(CONVERSION)
    report = _report(spec, data_of(spec, conversions(0.10, 0.15, 5000)))
    looks = report.metrics[0].comparisons[0].history
    page = render(report)
    labels = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle">([^<]+)</text>', page)
    assert labels[-1][1] == f"{looks[-1].at:%m-%d %H:%M}"  # hours long: day and minute
    xs = [float(x) for x, _ in labels]
    assert len(set(xs)) == len(xs)
    step = xs[1] - xs[0]
    assert all(b - a >= step * 0.999 for a, b in itertools.pairwise(xs)), xs  # at least a step apart
