"""The HTML report: self-contained, one chart per feature, escaped text."""

import re

import polars as pl

from driftline.drift import compute_drift


def test_self_contained_page(frames):
    ref, cur = frames
    html = compute_drift(ref, cur).to_html()
    assert html.startswith("<!DOCTYPE html>")
    assert html.endswith("</html>")
    for external in ("<script", "<link", "@import", "url(", "http://", "https://"):
        assert external not in html
    assert html.count("<svg") == 5
    assert html.count('<span class="badge drift">') >= 2
    assert "Drift report" in html


def test_escapes_names_and_labels():
    ref = pl.DataFrame({"<b>x</b>": ["<script>", "a", "b"] * 4})
    cur = pl.DataFrame({"<b>x</b>": ["<img src=x>", "a", "b"] * 4})
    html = compute_drift(ref, cur).to_html(title="t & <t>")
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<title>t &amp; &lt;t&gt;</title>" in html


def test_many_categories_are_capped(rng):
    values = [f"c{i}" for i in rng.integers(0, 80, 400)]
    html = compute_drift(pl.DataFrame({"c": values}), pl.DataFrame({"c": values[:200]})).to_html()
    n_labels = len(set(values))
    assert n_labels > 30
    assert f"{n_labels - 30} smaller categories not shown" in html
    assert len(re.findall(r"<rect ", html)) == 60
