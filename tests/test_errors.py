"""The exception tree: every "does not exist" is a NotFound (404), each kind with its own class."""

from __future__ import annotations

import inspect

from driftline import errors
from driftline.errors import DriftlineError, JobNotFound, ModelNotFound, NotFound


def _classes() -> list[type[DriftlineError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, DriftlineError)]


def test_not_found_is_the_base_of_every_404() -> None:
    assert issubclass(NotFound, DriftlineError)
    four_oh_four = [c for c in _classes() if c.http_status == 404]
    assert {c.__name__ for c in four_oh_four} >= {
        "NotFound",
        "ModelNotFound",
        "JobNotFound",
        "ProposalNotFound",
        "KeyNotFound",
        "ReferenceNotFound",
    }
    for cls in four_oh_four:
        assert issubclass(cls, NotFound), cls
    # Each kind is its own: none answers as another (a missing job once answered as a missing model).
    kinds = [c for c in four_oh_four if c is not NotFound]
    for a in kinds:
        for b in kinds:
            assert a is b or not issubclass(a, b), (a, b)
    assert not issubclass(JobNotFound, ModelNotFound)
