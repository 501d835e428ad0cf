"""The exception tree: every "does not exist" is a NotFound (404), each kind with its own class."""

from __future__ import annotations

from driftline.errors import DriftlineError, JobNotFound, ModelNotFound, NotFound


def test_not_found_is_the_base_of_every_404() -> None:
    assert issubclass(NotFound, DriftlineError)
    for cls in (NotFound, ModelNotFound, JobNotFound):
        assert issubclass(cls, NotFound)
        assert cls.http_status == 404
    assert not issubclass(JobNotFound, ModelNotFound)  # a missing job no longer answers as a missing model
