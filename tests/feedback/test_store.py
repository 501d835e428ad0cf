"""The feedback table on a real SQLite file: upserts, queries by model, time and entity, erasure."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftline.store.db import open_database
from driftline.store.feedback import Feedback, FeedbackStore
from driftline.store.migrations import MIGRATIONS


@pytest.fixture
def store(tmp_path: Path, store_at):
    db = open_database(store_at("driftline.db"))
    yield FeedbackStore(db)
    db.close()


def test_the_same_key_twice_keeps_the_last_value_and_counts_once(store: FeedbackStore):
    counts = store.put(
        "iris",
        [
            Feedback(target="1", request_id="a", row=0),
            Feedback(target="2", request_id="a", row=0),
            Feedback(target="3", request_id="a", row=1),
            Feedback(target='"x"', entity="cust-1"),
            Feedback(target='"y"', entity="cust-1"),
        ],
    )
    assert (counts.stored, counts.replaced) == (3, 0)
    labels = {(f.request_id, f.row, f.entity): f.target for f in store.labels("iris")}
    assert labels == {("a", 0, None): "2", ("a", 1, None): "3", (None, None, "cust-1"): '"y"'}

    again = store.put("iris", [Feedback(target="9", request_id="a", row=0), Feedback(target='"z"', entity="cust-1")])
    assert (again.stored, again.replaced) == (2, 2)
    labels = {(f.request_id, f.row, f.entity): f.target for f in store.labels("iris")}
    assert labels == {("a", 0, None): "9", ("a", 1, None): "3", (None, None, "cust-1"): '"z"'}
    assert len(store.labels("iris")) == 3
    # Another model's key of the same name is another label.
    assert store.put("mlp", [Feedback(target="1", request_id="a", row=0)]).replaced == 0
    assert len(store.labels("iris")) == 3
    assert len(store.labels("mlp")) == 1


def test_a_put_is_one_transaction(store: FeedbackStore):
    with pytest.raises(ValueError, match="exactly one"):
        store.put("iris", [Feedback(target="1", request_id="a", row=0), Feedback(target="1")])
    assert store.labels("iris") == []


def test_labels_since_and_by_entity(store: FeedbackStore):
    store.put("iris", [Feedback(target="1", request_id="a", row=0)])
    time.sleep(0.002)  # the store's clock reads to the microsecond: keep the two puts apart
    cut = datetime.now(UTC)
    store.put("iris", [Feedback(target="2", request_id="b", row=0), Feedback(target="0", entity="e")])
    later = store.labels("iris", since=cut)
    assert {(f.request_id, f.entity) for f in later} == {("b", None), (None, "e")}
    assert store.labels("iris", since=cut + timedelta(days=1)) == []
    assert len(store.labels("iris", since=cut - timedelta(days=1))) == 3
    first = store.labels("iris")[0]
    assert first.request_id == "a"
    assert first.received_at is not None
    assert first.received_at.tzinfo is not None
    found = store.by_entity("iris", "e")
    assert found is not None
    assert (found.target, found.request_id, found.entity) == ("0", None, "e")
    assert store.by_entity("iris", "nobody") is None
    assert store.by_entity("mlp", "e") is None


def test_erase_entity_removes_its_labels_in_every_model_and_of_its_requests(store: FeedbackStore):
    store.put("iris", [Feedback(target="1", entity="cust-1"), Feedback(target="1", entity="cust-2")])
    store.put("mlp", [Feedback(target="2", entity="cust-1"), Feedback(target="3", request_id="r1", row=0)])
    store.put("mlp", [Feedback(target="4", request_id="r1", row=1), Feedback(target="5", request_id="r2", row=0)])
    # r1 is one of cust-1's captured requests (the capture store says so); r2 is someone else's.
    assert store.erase_entity("cust-1", [("mlp", "r1")]) == 4
    assert [f.entity for f in store.labels("iris")] == ["cust-2"]
    assert [(f.request_id, f.row) for f in store.labels("mlp")] == [("r2", 0)]
    assert store.erase_entity("cust-1") == 0


def test_the_migration_is_the_last_and_survives_reopen(tmp_path: Path, store_at):
    path = store_at("driftline.db")
    db = open_database(path)
    FeedbackStore(db).put("iris", [Feedback(target="1", request_id="a", row=0)])
    db.close()
    db = open_database(path)
    assert db.schema_version() == len(MIGRATIONS)
    assert len(FeedbackStore(db).labels("iris")) == 1
    db.close()
