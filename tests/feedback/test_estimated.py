"""quality_of with CBPE references: each window's estimate is CBPE's on exactly its captured rows, labeled or not."""

from datetime import timedelta
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from tests.feedback.test_join import CLASSES, captured, truth

from driftline.errors import BadRequest
from driftline.feedback import join, quality_of
from driftline.quality.cbpe import estimate, fit_cbpe
from driftline.store.db import open_database
from driftline.store.feedback import Feedback, FeedbackStore

WINDOW = timedelta(minutes=2)


@pytest.fixture
def store(tmp_path: Path):
    db = open_database(tmp_path / "driftline.db")
    yield FeedbackStore(db)
    db.close()


def reference(seed=5, n=2000):
    """Labeled rows from before deployment: the label is 1 with probability score² (the scores overstate it)."""
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    return fit_cbpe((rng.random(n) < score**2).astype(np.int64), score, (score > 0.5).astype(np.int64))


@pytest.fixture
def joined(store: FeedbackStore):
    frame = captured(600)
    cls, _ = truth(frame)
    # Labels for the first minute's rows only: most windows hold no labeled row at all.
    store.put("iris", [Feedback(target=str(cls[f"r{i}"]), request_id=f"r{i}", row=0) for i in range(60)])
    return frame, join(frame, store.labels("iris"))


@pytest.mark.parametrize("score_output", ["score", "proba"])
def test_each_window_is_estimated_from_all_its_captured_rows(joined, score_output):
    frame, both = joined
    cbpe = reference()
    assert cbpe.calibrator is not None
    report = quality_of(
        both, "classification", "label", score_output, CLASSES, window=WINDOW, references={1: cbpe}, resamples=20
    )
    one, two = report.versions
    assert two.estimated is None
    assert all(w.estimated is None for w in two.windows)
    mine = frame.filter(pl.col("version") == 1)
    assert one.estimated == estimate(cbpe, mine["out.score"].to_numpy(), mine["out.label"].to_numpy())
    assert len(one.windows) == 5
    for w in one.windows:
        cut = mine.filter((pl.col("ts") >= w.start) & (pl.col("ts") < w.end))
        assert w.estimated == estimate(cbpe, cut["out.score"].to_numpy(), cut["out.label"].to_numpy())
        assert w.estimated.n == w.captured == cut.height
    # Beside the realized quality where there are labels, alone where there are none.
    assert one.windows[0].quality is not None
    assert [w.quality for w in one.windows[1:]] == [None] * 4
    # The report serialises as it did, the estimate included.
    decoded = msgspec.json.decode(msgspec.json.encode(report))
    assert (
        decoded["versions"][0]["windows"][1]["estimated"]["roc_auc"]["value"] == one.windows[1].estimated.roc_auc.value
    )


def test_without_references_nothing_is_estimated(joined):
    _, both = joined
    report = quality_of(both, "classification", "label", "score", CLASSES, window=WINDOW, resamples=20)
    assert all(v.estimated is None and all(w.estimated is None for w in v.windows) for v in report.versions)


def test_rows_without_a_score_are_left_out_of_the_estimate(store: FeedbackStore):
    frame = captured(100)
    frame = frame.with_columns(
        pl.when(pl.col("request_id") == "r4").then(None).otherwise("out.score").alias("out.score")
    )
    cbpe = reference()
    report = quality_of(join(frame, []), "classification", "label", "score", CLASSES, references={1: cbpe, 2: cbpe})
    one = report.versions[0]
    assert (one.captured, one.estimated.n) == (50, 49)
    kept = frame.filter((pl.col("version") == 1) & (pl.col("request_id") != "r4"))
    assert one.estimated == estimate(cbpe, kept["out.score"].to_numpy(), kept["out.label"].to_numpy())


def test_estimate_refusals_name_the_output(joined):
    frame, both = joined
    unlabeled = join(frame, [])
    with pytest.raises(BadRequest, match=r"^references"):
        quality_of(both, "classification", "label", references={1: reference()})
    strings = fit_cbpe(np.array(["a", "b"] * 100), np.linspace(0, 1, 200), positive="b")
    with pytest.raises(BadRequest, match=r"^references: positive class 'b'"):
        quality_of(unlabeled, "classification", "label", "score", CLASSES, references={2: strings})
    # Positive class 1 of the classes [7, 1]: a predicted 0 is neither.
    sevens = fit_cbpe(np.array([7, 1] * 100), np.linspace(0, 1, 200), np.array([7, 1] * 100))
    with pytest.raises(BadRequest, match=r"^out\.label: y_pred has label 0"):
        quality_of(unlabeled, "classification", "label", "score", CLASSES, references={2: sevens})
    with pytest.raises(BadRequest, match=r"^out\.value: y_proba has -0\.60\d+ at row 1, not a probability"):
        quality_of(unlabeled, "classification", "label", "value", CLASSES, references={2: sevens})
