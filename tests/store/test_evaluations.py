"""The evaluations table: the newest evaluation of a version wins, the reference pairs round-trip and are capped."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from driftline.store.audit import AuditAction, AuditLog
from driftline.store.db import open_database
from driftline.store.evaluations import REFERENCE_MAX_ROWS, EvaluationStore, NewEvaluation


@pytest.fixture
def db(tmp_path, store_at):
    database = open_database(store_at("driftline.db"))
    yield database
    database.close()


def new(version: int = 1, labels=None, scores=None, accuracy: float = 0.9) -> NewEvaluation:
    return NewEvaluation(
        model="m",
        version=version,
        sha256="a" * 64,
        dataset="/data/set.parquet",
        dataset_sha256="b" * 64,
        rows=10,
        target="y",
        task="classification",
        report=msgspec.json.encode({"n": 10, "accuracy": {"value": accuracy}}),
        metrics={"accuracy": accuracy, "roc_auc": None},
        labels=labels,
        scores=scores,
    )


def test_the_newest_evaluation_of_each_version_is_the_one_read(db):
    store = EvaluationStore(db)
    assert store.latest("m", 1) is None
    assert store.summary("m", 1) is None
    assert store.reference("m", 1) is None
    store.add(new(accuracy=0.5), "cli:a")
    second = store.add(new(accuracy=0.75), "cli:b")
    store.add(new(version=2, accuracy=0.25), "cli:c")
    latest = store.latest("m", 1)
    assert latest == second
    assert latest.report == {"n": 10, "accuracy": {"value": 0.75}}
    summary = store.summary("m", 1)
    assert summary is not None
    assert (summary.id, summary.metrics, summary.rows) == (second.id, {"accuracy": 0.75, "roc_auc": None}, 10)
    events = AuditLog(db).events(action=AuditAction.EVALUATE)
    assert [(e.actor, e.version_after) for e in events] == [("cli:c", "2"), ("cli:b", "1"), ("cli:a", "1")]
    assert "accuracy=0.75" in events[1].reason
    assert "roc_auc=null" in events[1].reason


def test_reference_pairs_round_trip(db):
    store = EvaluationStore(db)
    labels = np.array([0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.9, 0.6, 0.4, 0.55])
    stored = store.add(new(labels=labels, scores=scores), "cli:a")
    assert stored.reference_rows == 5
    found = store.reference("m", 1)
    assert found is not None
    assert found[0].dtype == np.int64
    assert found[0].tolist() == labels.tolist()
    assert found[1].tolist() == scores.tolist()
    store.add(new(), "cli:a")  # a newer evaluation without pairs: no reference any more
    assert store.reference("m", 1) is None


def test_more_pairs_than_the_cap_keep_a_seeded_sample_in_file_order(db):
    store = EvaluationStore(db)
    n = REFERENCE_MAX_ROWS + 50_000
    scores = np.arange(n, dtype=np.float64) / n
    labels = (np.arange(n) % 2).astype(np.int64)
    assert store.add(new(labels=labels, scores=scores), "cli:a").reference_rows == REFERENCE_MAX_ROWS
    kept_labels, kept_scores = store.reference("m", 1)
    assert len(kept_scores) == REFERENCE_MAX_ROWS
    assert np.all(np.diff(kept_scores) > 0)  # distinct rows, in their order
    rows = np.rint(kept_scores * n).astype(np.int64)
    assert kept_labels.tolist() == (rows % 2).tolist()  # each pair kept whole
    again = EvaluationStore(db).add(new(labels=labels, scores=scores), "cli:a")
    assert again.reference_rows == REFERENCE_MAX_ROWS
    assert np.array_equal(store.reference("m", 1)[1], kept_scores)  # seeded: the same sample


def test_labels_and_scores_come_together(db):
    store = EvaluationStore(db)
    with pytest.raises(ValueError, match="same length"):
        store.add(new(labels=[0, 1], scores=[0.5]), "cli:a")
    with pytest.raises(ValueError, match="same length"):
        store.add(new(labels=[0, 1]), "cli:a")
    assert store.latest("m", 1) is None
    assert AuditLog(db).events(action=AuditAction.EVALUATE) == []
