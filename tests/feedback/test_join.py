"""join and quality_of on captured frames built here and labels kept in a real SQLite store."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sklearn import metrics

from driftline.errors import BadRequest
from driftline.feedback import join, quality_of
from driftline.store.db import open_database
from driftline.store.feedback import Feedback, FeedbackStore

TOL = 1e-12
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CLASSES = [0, 1]


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))


def captured(n=600, seed=0):
    """n one-row requests in capture order (one per second), alternating versions 1 and 2, a third of them with
    an entity; out.label is the predicted class, out.proba its [p0, p1], out.score p1, out.value a regression."""
    rng = np.random.default_rng(seed)
    p1 = rng.random(n)
    return pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row": pl.Series([0] * n, dtype=pl.Int32),
            "model": ["iris"] * n,
            "version": pl.Series([1 + i % 2 for i in range(n)], dtype=pl.Int32),
            "sha256": ["ab" * 32] * n,
            "ts": pl.Series([START + timedelta(seconds=i) for i in range(n)], dtype=pl.Datetime("us", "UTC")),
            "arm": ["alias"] * n,
            "latency_us": pl.Series(rng.integers(100, 900, n), dtype=pl.Int64),
            "entity": [f"c{i}" if i % 3 == 0 else None for i in range(n)],
            "in.x": rng.random(n),
            "out.label": (p1 > 0.5).astype(np.int64),
            "out.proba": [[1.0 - p, p] for p in p1],
            "out.score": p1,
            "out.value": rng.normal(size=n),
        }
    )


def truth(frame: pl.DataFrame, seed=1):
    """A true class per captured row that agrees with the prediction ~70% of the time, and a true value."""
    rng = np.random.default_rng(seed)
    pred = frame["out.label"].to_numpy()
    cls = np.where(rng.random(frame.height) < 0.7, pred, 1 - pred)
    value = frame["out.value"].to_numpy() + rng.normal(scale=0.3, size=frame.height)
    return dict(zip(frame["request_id"], cls.tolist(), strict=True)), dict(
        zip(frame["request_id"], value.tolist(), strict=True)
    )


@pytest.fixture
def store(tmp_path: Path, store_at):
    db = open_database(store_at("driftline.db"))
    yield FeedbackStore(db)
    db.close()


def test_unmatched_labels_are_kept_and_counted(store: FeedbackStore):
    frame = captured(30)
    store.put(
        "iris",
        [
            Feedback(target="1", request_id="r1", row=0),
            Feedback(target="1", request_id="r1", row=5),  # r1 has no row 5
            Feedback(target="0", request_id="never", row=0),
            Feedback(target="0", entity="c3"),  # r3's entity: labels r3
            Feedback(target="0", entity="nobody"),
        ],
    )
    joined = join(frame, store.labels("iris"))
    assert (joined.captured, joined.labeled, joined.unmatched) == (30, 2, 3)
    assert joined.rows["request_id"].to_list() == ["r1", "r3"]
    assert joined.rows["target"].to_list() == [1, 0]
    assert joined.coverage == 2 / 30
    assert len(store.labels("iris")) == 5  # unmatched labels stay stored: their capture may come later


def test_an_id_label_wins_over_the_entity_label_and_labels_every_captured_copy(store: FeedbackStore):
    frame = captured(4)
    shadow = frame.filter(pl.col("request_id") == "r0").with_columns(pl.lit(2, pl.Int32).alias("version"))
    frame = pl.concat([frame, shadow.with_columns(pl.lit("shadow").alias("arm"))])
    store.put("iris", [Feedback(target='"a"', entity="c0"), Feedback(target='"b"', entity="c3")])
    store.put("iris", [Feedback(target='"z"', request_id="r3", row=0)])
    joined = join(frame, store.labels("iris"))
    got = joined.rows.select("request_id", "version", "target").rows()
    # Capture order: ts, then frame order (the shadow copy of r0 comes last in the frame, at r0's time).
    assert got == [("r0", 1, "a"), ("r0", 2, "a"), ("r3", 2, "z")]
    assert joined.unmatched == 0


def test_labels_before_and_after_the_capture_in_shuffled_order_give_the_same_join(tmp_path: Path, store_at):
    frame = captured(400)
    cls, _ = truth(frame)
    rng = np.random.default_rng(7)
    chosen = [f"r{i}" for i in sorted(rng.choice(400, 240, replace=False))]
    labels = [Feedback(target=str(cls[r]), request_id=r, row=0) for r in chosen]
    labels.append(Feedback(target="1", request_id="late", row=0))

    in_order = FeedbackStore(open_database(store_at("a.db")))
    in_order.put("iris", labels)
    reference = join(frame, in_order.labels("iris"))

    shuffled = [labels[i] for i in rng.permutation(len(labels))]
    split = FeedbackStore(open_database(store_at("b.db")))
    split.put("iris", shuffled[:120])  # labels that arrive before their rows are captured ...
    before = join(frame.head(0), split.labels("iris"))
    assert (before.captured, before.labeled, before.unmatched) == (0, 0, 120)
    split.put("iris", shuffled[120:])  # ... and the rest after
    joined = join(frame, split.labels("iris"))

    assert_frame_equal(joined.rows, reference.rows)
    assert_frame_equal(joined.captures, reference.captures)
    assert (joined.captured, joined.labeled, joined.unmatched) == (400, 240, 1)
    assert joined.rows["request_id"].to_list() == chosen


def _check_classification(q, true, rows: pl.DataFrame):
    """q against sklearn on ``rows`` of the captured frame, whose true classes are ``true``."""
    pred, p1 = rows["out.label"].to_list(), rows["out.score"].to_numpy()
    assert q.n == rows.height == len(true)
    assert close(q.accuracy.value, metrics.accuracy_score(true, pred))
    p, r, f, _ = metrics.precision_recall_fscore_support(true, pred, labels=CLASSES, zero_division=0)
    for j, c in enumerate(q.classes):
        assert close(c.precision.value, p[j])
        assert close(c.recall.value, r[j])
        assert close(c.f1.value, f[j])
    assert close(q.log_loss.value, metrics.log_loss(true, np.stack([1 - p1, p1], axis=1), labels=CLASSES))
    assert close(q.roc_auc.value, metrics.roc_auc_score(true, p1))
    assert q.confusion.counts == metrics.confusion_matrix(true, pred, labels=CLASSES).tolist()


@pytest.mark.parametrize("score_output", ["proba", "score"])
def test_quality_per_version_and_window_equals_sklearn_on_exactly_the_joined_rows(store, score_output):
    frame = captured(600)
    cls, _ = truth(frame)
    rng = np.random.default_rng(3)
    chosen = [f"r{i}" for i in rng.choice(600, 360, replace=False)]
    store.put("iris", [Feedback(target=str(cls[r]), request_id=r, row=0) for r in chosen])
    joined = join(frame, store.labels("iris"))
    report = quality_of(joined, "classification", "label", score_output, classes=CLASSES, window=50, resamples=50)
    assert [v.version for v in report.versions] == [1, 2]
    for v in report.versions:
        # The rows that should be joined, found from the frame and the chosen ids, not from the join.
        mine = frame.filter((pl.col("version") == v.version) & pl.col("request_id").is_in(chosen))
        true = [cls[r] for r in mine["request_id"]]
        _check_classification(v.overall, true, mine)
        assert (v.captured, v.labeled, v.coverage) == (300, mine.height, mine.height / 300)
        # Every 50 labeled rows close a window; the windows' labeled rows are the version's, in capture order.
        assert sum(w.labeled for w in v.windows) == mine.height
        assert sum(w.captured for w in v.windows) == 300
        assert [w.labeled for w in v.windows[:-1]] == [50] * (len(v.windows) - 1)
        offset = 0
        for w in v.windows:
            part = mine.slice(offset, w.labeled)
            assert w.coverage == w.labeled / w.captured
            assert w.start <= part["ts"].min()
            assert part["ts"].max() <= w.end
            if w.labeled:
                _check_classification(w.quality, true[offset : offset + w.labeled], part)
            offset += w.labeled
    whole = quality_of(joined, "classification", "label", score_output, classes=CLASSES, resamples=50)
    assert [len(v.windows) for v in whole.versions] == [1, 1]
    assert [v.windows[0].quality for v in whole.versions] == [v.overall for v in report.versions]


def test_time_windows_and_regression(store: FeedbackStore):
    frame = captured(600)
    _, value = truth(frame)
    chosen = [f"r{i}" for i in range(0, 600, 2) if i % 5]  # version 1's rows only, 4 in 5 of them
    store.put("iris", [Feedback(target=repr(value[r]), request_id=r, row=0) for r in chosen])
    joined = join(frame, store.labels("iris"))
    report = quality_of(joined, "regression", "value", window=timedelta(minutes=2), resamples=50)
    one, two = report.versions
    assert (two.labeled, two.overall) == (0, None)
    assert all(w.quality is None for w in two.windows)
    assert [w.start for w in one.windows] == [START + timedelta(minutes=2 * k) for k in range(5)]
    for w in one.windows:
        span = (pl.col("ts") >= w.start) & (pl.col("ts") < w.end)
        part = frame.filter(span & pl.col("request_id").is_in(chosen))
        assert (w.captured, w.labeled, part.height) == (60, 48, 48)
        t = np.asarray([value[r] for r in part["request_id"]])
        p = part["out.value"].to_numpy()
        assert close(w.quality.mae.value, metrics.mean_absolute_error(t, p))
        assert close(w.quality.rmse.value, metrics.root_mean_squared_error(t, p))
        assert close(w.quality.mape.value, metrics.mean_absolute_percentage_error(t, p))
        assert close(w.quality.r2.value, metrics.r2_score(t, p))


def test_bad_joins_and_reports_are_named(store: FeedbackStore):
    frame = captured(10)
    with pytest.raises(BadRequest, match="'entity'"):
        join(frame.drop("entity"), [])
    with pytest.raises(BadRequest, match="2 models"):
        join(frame.with_columns(pl.Series("model", ["a", "b"] * 5)), [])
    store.put("iris", [Feedback(target='"setosa"', request_id="r1", row=0)])
    joined = join(frame, store.labels("iris"))
    with pytest.raises(BadRequest, match=r"'out\.nope'"):
        quality_of(joined, "classification", "nope")
    with pytest.raises(BadRequest, match="y_pred holds ints, y_true holds strings"):
        quality_of(joined, "classification", "label")
    with pytest.raises(BadRequest, match="window"):
        quality_of(joined, "classification", "label", window=0)
    with pytest.raises(BadRequest, match="classes is required"):
        quality_of(joined, "classification", "label", "score")
    with pytest.raises(BadRequest, match="task"):
        quality_of(joined, "ranking", "label")
