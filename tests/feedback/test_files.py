"""read_feedback_file on real CSV and Parquet files: ids stay text, and every bad column is named in one line."""

from pathlib import Path

import polars as pl
import pytest

from driftline.errors import BadRequest
from driftline.feedback import read_feedback_file
from driftline.store.feedback import Feedback


def test_csv_and_parquet_give_the_same_labels(tmp_path: Path):
    frame = pl.DataFrame({"req": ["007", "008", None], "r": [0, 2, None], "cust": [None, None, "c1"], "y": [1, 0, 1]})
    csv, parquet = tmp_path / "labels.csv", tmp_path / "labels.parquet"
    frame.write_csv(csv)
    frame.write_parquet(parquet)
    want = [
        Feedback(target="1", request_id="007", row=0),
        Feedback(target="0", request_id="008", row=2),
        Feedback(target="1", entity="c1"),
    ]
    for path in (csv, parquet):
        got = read_feedback_file(path, "req", "y", row_column="r", entity_column="cust", task="classification")
        assert got == want


def test_rows_default_to_zero_and_regression_targets_are_numbers(tmp_path: Path):
    path = tmp_path / "labels.csv"
    pl.DataFrame({"id": ["a", "b"], "price": [1.5, 2]}).write_csv(path)
    got = read_feedback_file(path, "id", "price", task="regression")
    assert got == [Feedback(target="1.5", request_id="a", row=0), Feedback(target="2.0", request_id="b", row=0)]


@pytest.mark.parametrize(
    ("frame", "kwargs", "named"),
    [
        ({"id": ["a"], "y": [1]}, {"target_column": "label"}, "'label'"),
        ({"id": ["a"], "y": [1]}, {"id_column": "rid"}, "'rid'"),
        ({"id": ["a"], "y": [None]}, {}, "'y'"),
        ({"id": ["a"], "y": [1.5]}, {}, "'y'"),
        ({"id": ["a"], "y": ["x"]}, {"task": "regression"}, "'y'"),
        ({"id": ["a"], "y": [float("nan")]}, {"task": "regression"}, "'y'"),
        ({"id": ["a"], "y": [1], "r": [-1]}, {"row_column": "r"}, "'r'"),
        ({"id": ["a"], "y": [1], "r": ["x"]}, {"row_column": "r"}, "'r'"),
        ({"id": ["a"], "y": [1], "r": [None]}, {"row_column": "r"}, "'r'"),
        ({"id": ["a"], "y": [1], "e": ["c"]}, {"entity_column": "e"}, "'id' and 'e'"),
        ({"id": [None], "y": [1], "e": [None]}, {"entity_column": "e"}, "'id' and 'e'"),
        ({"id": [None], "y": [1], "e": ["c"], "r": [0]}, {"entity_column": "e", "row_column": "r"}, "'r'"),
        ({"id": [1.5], "y": [1]}, {}, "'id'"),
    ],
)
def test_every_bad_column_is_named_in_one_line(tmp_path: Path, frame, kwargs, named):
    path = tmp_path / "labels.parquet"
    pl.DataFrame(frame).write_parquet(path)
    args = {"id_column": "id", "target_column": "y", "task": "classification", **kwargs}
    with pytest.raises(BadRequest) as info:
        read_feedback_file(path, **args)
    message = str(info.value)
    assert named in message
    assert str(path) in message
    assert "\n" not in message


def test_bad_files_are_refused_in_one_line(tmp_path: Path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is no parquet")
    text = tmp_path / "labels.txt"
    text.write_text("id,y\na,1\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('id,y\na,1\n"b,2\n')
    for path in (broken, text, ragged, tmp_path / "missing.csv"):
        with pytest.raises(BadRequest) as info:
            read_feedback_file(path, "id", "y", task="classification")
        assert str(path) in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(BadRequest, match="id column or an entity column"):
        read_feedback_file(text.with_suffix(".csv"), None, "y", task="classification")
