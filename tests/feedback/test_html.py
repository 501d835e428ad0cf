"""The quality page: self-contained, every model-provided string escaped, metrics, coverage, chart and confusion."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from driftline.feedback.html import render_quality
from driftline.feedback.join import join
from driftline.feedback.report import QualityReport, quality_of
from driftline.store.feedback import Feedback

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EVIL = '<script>alert("x")</script>'


def _classified(n: int = 60, labels: tuple[str, str] = (EVIL, "ok")) -> QualityReport:
    """A binary classifier's report over two hourly windows, the second half of the rows left unlabeled."""
    rng = np.random.default_rng(1)
    p = rng.uniform(size=n)
    pred = [labels[int(v > 0.5)] for v in p]
    frame = pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row": [0] * n,
            "model": ["m"] * n,
            "version": [3] * n,
            "ts": [T0 + timedelta(minutes=2 * i) for i in range(n)],
            "entity": [None] * n,
            "out.label": pred,
            "out.score": p.tolist(),
        },
        schema_overrides={"entity": pl.String},
    )
    truth = [labels[int(rng.uniform() < v)] for v in p]
    feedback = [Feedback(target=json.dumps(truth[i]), request_id=f"r{i}", row=0) for i in range(n // 2)]
    joined = join(frame, feedback)
    return quality_of(joined, "classification", "label", "score", list(labels), labels[1], timedelta(hours=1))


def test_the_page_is_self_contained_and_escapes_labels_and_the_model_name():
    html = render_quality(_classified(), "model<&>")
    assert html.startswith("<!DOCTYPE html>")
    assert EVIL not in html
    assert "&lt;script&gt;" in html
    assert "model&lt;&amp;&gt;" in html
    # nothing to download: no script, stylesheet link, image or font from anywhere
    assert not re.search(r"<script|<link|<img|src=|href=|@import|url\(", html)


def test_each_version_has_its_metrics_intervals_coverage_chart_and_confusion():
    report = _classified()
    html = render_quality(report, "m")
    v = report.versions[0]
    assert "Version 3" in html
    assert "accuracy" in html
    assert "ROC AUC" in html
    assert "log loss" in html
    assert v.coverage == 0.5
    assert "50.0%" in html
    assert html.count("<svg") == 1
    assert "<polygon" in html
    assert "<polyline" in html
    overall = v.overall
    assert overall is not None
    for row in overall.confusion.counts:
        for count in row:
            assert f"<td class='num'>{count:,}</td>" in html
    assert "Confusion matrix" in html
    # the second window has no labels: it is in the table with no metric, not in the chart
    assert [w.quality is None for w in v.windows] == [False, True]
    assert html.count("<circle") == 1


def test_a_regression_report_charts_mae():
    n = 40
    rng = np.random.default_rng(2)
    y = rng.normal(size=n)
    frame = pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row": [0] * n,
            "model": ["m"] * n,
            "version": [1] * n,
            "ts": [T0 + timedelta(seconds=i) for i in range(n)],
            "entity": [None] * n,
            "out.value": (y + rng.normal(scale=0.1, size=n)).tolist(),
        },
        schema_overrides={"entity": pl.String},
    )
    labels = [Feedback(target=repr(float(y[i])), request_id=f"r{i}", row=0) for i in range(n)]
    report = quality_of(join(frame, labels), "regression", "value", window=10)
    html = render_quality(report, "m")
    assert "MAE per window" in html
    assert "RMSE" in html
    assert "R²" in html
    assert html.count("<circle") == 4
    assert "Confusion matrix" not in html


def test_an_empty_report_and_a_version_without_labels_render():
    assert "no captured rows" in render_quality(QualityReport(task="regression", unmatched=4, versions=[]), "m")
    report = _classified()
    frame = report.versions[0]
    bare = QualityReport(
        task=report.task,
        unmatched=0,
        versions=[type(frame)(frame.version, frame.captured, 0, 0.0, None, [])],
    )
    assert "has a label yet" in render_quality(bare, "m")
