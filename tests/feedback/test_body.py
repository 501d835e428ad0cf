"""parse_feedback: the accepted shapes, and every bad field refused as a BadRequest naming it."""

import pytest

from driftline.errors import BadRequest
from driftline.feedback import parse_feedback
from driftline.store.feedback import Feedback


def test_one_object_and_a_list_both_parse():
    assert parse_feedback(b'{"id": "r1", "target": "setosa"}', 10, "classification") == [
        Feedback(target='"setosa"', request_id="r1", row=0)
    ]
    body = b'{"feedback": [{"id": "r1", "row": 3, "target": 2}, {"entity": "c1", "target": true}]}'
    assert parse_feedback(body, 2, "classification") == [
        Feedback(target="2", request_id="r1", row=3),
        Feedback(target="true", entity="c1"),
    ]
    assert parse_feedback(b'{"id": "r1", "target": 2.5}', 1, "regression")[0].target == "2.5"
    assert parse_feedback(b'{"id": "r1", "target": -3}', 1, "regression")[0].target == "-3"


@pytest.mark.parametrize(
    ("body", "task", "named"),
    [
        (b"not json", "classification", "feedback body"),
        (b"[1, 2]", "classification", "feedback body"),
        (b'{"target": 1}', "classification", "id, entity"),
        (b'{"id": "r", "entity": "c", "target": 1}', "classification", "id, entity"),
        (b'{"feedback": [{"id": "r", "target": 1}, {"target": 1}]}', "classification", "feedback[1].id"),
        (b'{"feedback": [{"id": 7, "target": 1}]}', "classification", "feedback[0].id"),
        (b'{"feedback": [{"entity": 7, "target": 1}]}', "classification", "feedback[0].entity"),
        (b'{"feedback": [{"id": "r", "row": -1, "target": 1}]}', "classification", "feedback[0].row"),
        (b'{"feedback": [{"id": "r", "row": 1.5, "target": 1}]}', "classification", "feedback[0].row"),
        (b'{"feedback": [{"id": "r", "row": 4294967296, "target": 1}]}', "classification", "feedback[0].row"),
        (b'{"feedback": [{"entity": "c", "row": 0, "target": 1}]}', "classification", "feedback[0].row"),
        (b'{"feedback": [{"id": "r"}]}', "classification", "target"),
        (b'{"feedback": [{"id": "r", "target": null}]}', "classification", "feedback[0].target"),
        (b'{"feedback": [{"id": "r", "target": 1.0}]}', "classification", "feedback[0].target"),
        (b'{"feedback": [{"id": "r", "target": [1]}]}', "classification", "feedback[0].target"),
        (b'{"feedback": [{"id": "r", "target": 18446744073709551616}]}', "classification", "feedback[0].target"),
        (b'{"feedback": [{"id": "r", "target": "1"}]}', "regression", "feedback[0].target"),
        (b'{"feedback": [{"id": "r", "target": true}]}', "regression", "feedback[0].target"),
        (b'{"id": "r", "target": 1e400}', "regression", "target"),
        (b'{"feedback": [{"id": "r", "target": 1, "extra": 0}]}', "classification", "extra"),
        (b'{"feedback": [], "extra": 0}', "classification", "extra"),
        (b'{"feedback": {"id": "r"}}', "classification", "feedback"),
        (b'{"feedback": []}', "classification", "feedback"),
        (b'{"id": "r", "target": 1}', "ranking", "task"),
    ],
)
def test_every_bad_field_is_named(body, task, named):
    with pytest.raises(BadRequest) as info:
        parse_feedback(body, 10, task)
    assert named in str(info.value)


def test_too_many_items_are_refused_before_any_is_decoded():
    # The items are not even labels: a count over the limit is refused before any of them is looked at.
    body = b'{"feedback": [' + b",".join([b"0"] * 11) + b"]}"
    with pytest.raises(BadRequest, match=r"^feedback: 11 items, more than the 10"):
        parse_feedback(body, 10, "classification")
    assert (
        len(
            parse_feedback(
                b'{"feedback": [' + b",".join([b'{"id": "r", "target": 1}'] * 10) + b"]}", 10, "classification"
            )
        )
        == 10
    )
