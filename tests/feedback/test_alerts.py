"""Quality alert rules: their config.toml validation, how one rule is judged on joined rows (equal to scikit-learn
on exactly the window's rows), and the state of a rule per version: fires once, clears once, insufficient windows
leave it be."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import numpy as np
import polars as pl
import pytest
from sklearn import metrics

from driftline.errors import ConfigError
from driftline.feedback import join
from driftline.feedback.alerts import QualityAlerts
from driftline.feedback.join import Labels
from driftline.feedback.rules import judge
from driftline.repository.model_config import QualityConfig, load_model_config
from driftline.store.feedback import Feedback

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CLASSIFIER = {"task": "classification", "label_output": "label", "score_output": "proba", "classes": [0, 1]}


def captured(n: int, version: int = 1) -> pl.DataFrame:
    """n one-row requests of one version, one per second; out.label alternates 0/1, out.proba matches it."""
    labels = [i % 2 for i in range(n)]
    return pl.DataFrame(
        {
            "request_id": [f"v{version}-r{i}" for i in range(n)],
            "row": pl.Series([0] * n, dtype=pl.Int32),
            "model": ["iris"] * n,
            "version": pl.Series([version] * n, dtype=pl.Int32),
            "sha256": ["ab" * 32] * n,
            "ts": pl.Series([START + timedelta(seconds=i) for i in range(n)], dtype=pl.Datetime("us", "UTC")),
            "arm": ["alias"] * n,
            "latency_us": pl.Series([100] * n, dtype=pl.Int64),
            "entity": pl.Series([None] * n, dtype=pl.String),
            "out.label": pl.Series(labels, dtype=pl.Int64),
            "out.proba": [[0.8, 0.2] if c == 0 else [0.3, 0.7] for c in labels],
        }
    )


def labels_for(frame: pl.DataFrame, right: range | list[int], wrong: range | list[int] = ()) -> list[Feedback]:
    """Labels equal to the prediction for the rows ``right``, the other class for the rows ``wrong``."""
    pred = frame["out.label"].to_list()
    ids = frame["request_id"].to_list()
    out = [Feedback(target=str(pred[i]), request_id=ids[i], row=0) for i in right]
    return out + [Feedback(target=str(1 - pred[i]), request_id=ids[i], row=0) for i in wrong]


def config(*rules: dict) -> QualityConfig:
    return msgspec.convert({**CLASSIFIER, "alerts": list(rules)}, QualityConfig)


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ({"metric": "accurcy", "below": 0.9}, "metric"),
        ({"metric": "accuracy", "below": 0.9, "above": 0.5}, "below, above or drop"),
        ({"metric": "accuracy"}, "below, above or drop"),
        ({"metric": "mae", "above": 1.0}, "quality.alerts[0].metric"),  # a regression's metric on a classifier
        ({"metric": "accuracy", "above": 0.9}, "above"),  # accuracy is better when higher
        ({"metric": "log_loss", "below": 0.9}, "below"),  # an error metric fires above
        ({"metric": "accuracy", "drop": 0.05}, "drop"),  # only an estimate has a reference to drop from
        ({"metric": "accuracy", "below": 0.9, "last": "1 hour"}, "last"),
        ({"metric": "accuracy", "below": 0.9, "last": "1h", "last_rows": 500}, "last_rows and last"),
        ({"metric": "accuracy", "below": 0.9, "last_rows": 10, "min_labeled": 50}, "last_rows"),
        ({"metric": "accuracy", "below": 0.9, "min_labeled": 0}, "min_labeled"),
        ({"metric": "accuracy", "below": float("nan")}, "below"),
        ({"metric": "accuracy", "below": 0.9, "colour": "red"}, "colour"),
    ],
)
def test_a_bad_rule_is_a_config_error_naming_its_key(tmp_path: Path, rule: dict, key: str):
    lines = [f"{k} = {v!r}" if not isinstance(v, float) else f"{k} = {v}" for k, v in rule.items()]
    text = (
        '[quality]\ntask = "classification"\nlabel_output = "label"\nscore_output = "proba"\nclasses = [0, 1]\n'
        "[[quality.alerts]]\n" + "\n".join(lines).replace("'", '"') + "\n"
    )
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_model_config(tmp_path / "config.toml")
    assert key in str(caught.value)
    assert str(tmp_path / "config.toml") in str(caught.value)


def test_a_metric_that_needs_scores_needs_a_score_output():
    with pytest.raises(msgspec.ValidationError, match=r"quality.alerts\[0\].metric: roc_auc needs"):
        msgspec.convert(
            {"task": "classification", "label_output": "label", "alerts": [{"metric": "roc_auc", "below": 0.8}]},
            QualityConfig,
        )


def test_the_window_of_the_last_rows_is_the_newest_labeled_rows_and_equals_sklearn():
    frame = captured(100)
    # Rows 0..59 labeled right, 60..79 wrong, 80..99 unlabeled: the last 40 labeled rows are 40..79.
    joined = join(frame, labels_for(frame, range(60), range(60, 80)))
    quality = config({"metric": "accuracy", "below": 0.9, "last_rows": 40, "min_labeled": 30})
    verdict = judge(quality.alerts[0], quality, joined, START + timedelta(hours=1))
    assert verdict.state == "firing"
    assert verdict.window is not None
    assert verdict.window.start == START + timedelta(seconds=40)
    assert verdict.window.end == START + timedelta(seconds=79, microseconds=1)
    assert (verdict.window.labeled, verdict.window.captured) == (40, 60)  # rows 40..99 were captured since
    truth = [frame["out.label"][i] if i < 60 else 1 - frame["out.label"][i] for i in range(40, 80)]
    assert verdict.estimate is not None
    assert verdict.estimate.value == metrics.accuracy_score(truth, frame["out.label"][40:80].to_list())
    assert verdict.estimate.lower < verdict.estimate.value < verdict.estimate.upper


def test_a_time_window_and_an_error_metric():
    frame = captured(100)
    joined = join(frame, labels_for(frame, range(50), range(50, 100)))
    now = START + timedelta(seconds=100)
    # The last 30 s hold rows 70..99, all labeled wrong: log loss of the true class's probability is high.
    quality = config({"metric": "log_loss", "above": 0.5, "last": "30s", "min_labeled": 30})
    verdict = judge(quality.alerts[0], quality, joined, now)
    assert verdict.state == "firing"
    assert verdict.window is not None
    assert (verdict.window.start, verdict.window.end) == (now - timedelta(seconds=30), now)
    truth = [1 - frame["out.label"][i] for i in range(70, 100)]
    proba = np.array(frame["out.proba"][70:100].to_list())
    assert verdict.estimate is not None
    assert abs(verdict.estimate.value - metrics.log_loss(truth, proba, labels=[0, 1])) < 1e-12


def test_too_few_labeled_rows_and_an_estimate_not_in_the_report_are_insufficient():
    frame = captured(50)
    joined = join(frame, labels_for(frame, range(10)))
    quality = config(
        {"metric": "accuracy", "below": 0.9, "min_labeled": 20},
        {"metric": "estimated_roc_auc", "drop": 0.05, "min_labeled": 5},
    )
    now = START + timedelta(hours=1)
    few, estimated = (judge(rule, quality, joined, now) for rule in quality.alerts)
    assert (few.state, few.estimate) == ("insufficient", None)
    assert few.window is not None
    assert few.window.labeled == 10
    assert (estimated.state, estimated.estimate) == ("insufficient", None)  # no CBPE baseline for the version
    assert judge(quality.alerts[0], quality, join(frame, []), now).state == "insufficient"


def _scored(n: int, seed: int, spread: float) -> pl.DataFrame:
    """``captured(n)`` with random positive-class scores (wider ``spread``: more confident) and labels from them."""
    rng = np.random.default_rng(seed)
    p = np.clip(0.5 + rng.normal(0.0, spread, n), 0.01, 0.99)
    frame = captured(n)
    return frame.with_columns(
        pl.Series("out.label", (p > 0.5).astype(np.int64)), pl.Series("out.proba", [[1 - x, x] for x in p])
    )


def test_estimated_rules_judge_captured_rows_with_the_cbpe_baseline():
    from driftline.feedback.service import Baseline
    from driftline.quality.cbpe import estimate, fit_cbpe

    rng = np.random.default_rng(1)
    p_ref = np.clip(0.5 + rng.normal(0.0, 0.3, 2000), 0.01, 0.99)
    y_ref = (rng.random(2000) < p_ref).astype(np.int64)  # calibrated scores
    baseline = Baseline(fit_cbpe(y_ref, p_ref), {"accuracy": 0.9, "roc_auc": 0.9})
    frame = _scored(400, seed=2, spread=0.08)  # scores near 0.5: CBPE expects a poor accuracy, with no label
    joined = join(frame, [])
    quality = config(
        {"metric": "estimated_accuracy", "below": 0.7, "min_labeled": 300},
        {"metric": "estimated_roc_auc", "drop": 0.05, "last_rows": 200, "min_labeled": 200},
    )
    now = START + timedelta(hours=1)
    below, drop = (judge(rule, quality, joined, now, baseline=baseline) for rule in quality.alerts)
    proba = np.array(frame["out.proba"].to_list())[:, 1]
    expected = estimate(baseline.cbpe, proba[-300:], frame["out.label"].to_numpy()[-300:])
    assert below.state == "firing"
    assert below.estimate is not None
    assert below.estimate.value == pytest.approx(expected.accuracy.value, abs=1e-12)
    assert (below.estimate.lower, below.estimate.upper) == pytest.approx(
        (expected.accuracy.lower, expected.accuracy.upper), abs=1e-12
    )
    assert below.window is not None
    assert (below.window.labeled, below.window.captured) == (0, 300)  # no label needed
    auc = estimate(baseline.cbpe, proba[-200:], frame["out.label"].to_numpy()[-200:]).roc_auc.value
    assert drop.estimate is not None
    assert drop.estimate.value == pytest.approx(auc, abs=1e-12)
    assert drop.state == ("firing" if auc < 0.9 - 0.05 else "ok")
    # Confident scores: the estimate recovers, and the same rules are ok.
    sure = join(_scored(400, seed=3, spread=0.45), [])
    assert [judge(r, quality, sure, now, baseline=baseline).state for r in quality.alerts] == ["ok", "ok"]
    # Fewer captured rows than min_labeled, or no baseline: not judged.
    assert judge(quality.alerts[0], quality, join(frame.head(100), []), now, baseline=baseline).state == "insufficient"
    assert judge(quality.alerts[0], quality, joined, now).state == "insufficient"


def test_a_rule_fires_once_and_clears_once_and_insufficient_windows_leave_it():
    sent: list[bytes] = []
    alerts = QualityAlerts(
        None,  # type: ignore[arg-type] - observe is handed its rows; only check reads them through LiveQuality
        base_url="http://127.0.0.1:8000/",
        gauge_window=timedelta(days=365),
        send=sent.append,
    )
    quality = config({"metric": "accuracy", "below": 0.9, "last_rows": 20, "min_labeled": 20})
    rule = quality.alerts[0]
    frame = captured(100)
    now = START + timedelta(hours=1)

    def observe(feedback: list[Feedback]) -> list:
        return alerts.observe("iris", 1, quality, join(frame, feedback), now)

    assert alerts.state("iris", 1, rule) == "insufficient"
    assert observe(labels_for(frame, range(10))) == []  # 10 labeled: not judged
    assert alerts.state("iris", 1, rule) == "insufficient"
    assert observe(labels_for(frame, range(20))) == []  # judged ok: nothing to clear, no event
    assert alerts.state("iris", 1, rule) == "ok"
    [fired] = observe(labels_for(frame, range(20), range(20, 40)))  # the newest 20 are all wrong
    assert (fired.previous, fired.state, fired.value, fired.rule.metric, fired.rule.op) == (
        "ok",
        "firing",
        0.0,
        "accuracy",
        "below",
    )
    assert (fired.window.labeled, fired.window.start) == (20, START + timedelta(seconds=20))
    assert observe(labels_for(frame, range(20), range(20, 40))) == []  # still firing: no second event
    # An erasure leaves too few labels: the state stays firing, no event.
    assert observe(labels_for(frame, range(5))) == []
    assert alerts.state("iris", 1, rule) == "firing"
    [cleared] = observe(labels_for(frame, range(20), range(20, 40)) + labels_for(frame, range(40, 60)))
    assert (cleared.previous, cleared.state, cleared.value) == ("firing", "ok", 1.0)
    assert [msgspec.json.decode(b)["state"] for b in sent] == ["firing", "ok"]
    body = msgspec.json.decode(sent[0])
    assert (body["kind"], body["model"], body["version"], body["rule"]["threshold"]) == ("quality", "iris", "1", 0.9)
    url = urlsplit(body["export_url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:8000", "/v1/models/iris/captures")
    assert parse_qs(url.query) == {
        "version": ["1"],
        "since": ["2026-11-30T12:00:20.000000Z"],
        "until": ["2026-11-30T12:00:39.000001Z"],
        "labeled": ["true"],
    }
    assert [e.state for e in alerts.events] == ["firing", "ok"]


def test_versions_have_their_own_state_and_figures_and_unloaded_ones_are_dropped():
    alerts = QualityAlerts(None, base_url="http://h:1", gauge_window=timedelta(days=365))  # type: ignore[arg-type]
    quality = config({"metric": "accuracy", "below": 0.9, "min_labeled": 10})
    now = START + timedelta(hours=1)
    one, two = captured(40, 1), captured(40, 2)
    [event] = alerts.observe("iris", 1, quality, join(one, labels_for(one, [], range(10))), now)
    assert event.state == "firing"
    assert alerts.observe("iris", 2, quality, join(two, labels_for(two, range(30))), now) == []
    assert alerts.state("iris", 2, quality.alerts[0]) == "ok"
    figures = alerts.figures()
    assert figures[("iris", 1)].metrics["accuracy"] == 0.0
    assert (figures[("iris", 2)].labeled, figures[("iris", 2)].captured, figures[("iris", 2)].coverage) == (
        30,
        40,
        0.75,
    )
    assert set(figures[("iris", 2)].metrics) == {
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "log_loss",
    }
    alerts.retain({"iris": [2]})
    assert set(alerts.figures()) == {("iris", 2)}


def test_labels_give_one_target_type_over_every_segment():
    """The labeled export writes segment by segment into one file: an int label in one segment and a float in
    another still make one Float64 column."""
    frame = captured(4)
    ids = frame["request_id"].to_list()
    index = Labels([Feedback(target="1", request_id=ids[0], row=0), Feedback(target="0.5", request_id=ids[3], row=0)])
    first = index.labeled(frame.head(2), uniform=True)
    assert (first["request_id"].to_list(), first["target"].dtype, first["target"].to_list()) == (
        [ids[0]],
        pl.Float64,
        [1.0],
    )
    assert index.labeled(frame.head(2))["target"].dtype == pl.Int64  # alone, as these rows' labels decide
    assert index.target_type() == pl.Float64


def test_an_event_carries_the_full_bootstrap_interval_though_checks_measure_values_only():
    """Checks judge on the value alone (one resample); the event of a change is measured with the full bootstrap."""
    alerts = QualityAlerts(None, base_url="http://h:1", gauge_window=timedelta(days=365))  # type: ignore[arg-type]
    quality = config({"metric": "log_loss", "above": 0.5, "min_labeled": 40})
    frame = captured(60)
    feedback = labels_for(frame, range(10), range(10, 60))
    [event] = alerts.observe("iris", 1, quality, join(frame, feedback), START + timedelta(hours=1))
    full = judge(quality.alerts[0], quality, join(frame, feedback), START + timedelta(hours=1))
    assert full.estimate is not None
    assert (event.value, event.lower, event.upper) == (full.estimate.value, full.estimate.lower, full.estimate.upper)
    assert event.lower < event.value < event.upper
