"""The one rule of what a target may be for a model's task (bodies and files both check through it)."""

from __future__ import annotations

import math
from typing import Any, get_args

import msgspec

from driftline.errors import BadRequest
from driftline.repository.model_config import Task

__all__ = ["check_task", "encode_target"]

TASKS: tuple[Task, ...] = get_args(Task)
_INT64 = (-(2**63), 2**63 - 1)


def check_task(task: str) -> Task:
    """``task`` itself, when it is one of TASKS."""
    for known in TASKS:
        if task == known:
            return known
    raise BadRequest(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def encode_target(value: Any, task: Task, where: str) -> str:
    """The target as JSON text, after checking it fits the task.

    A classification label is a string, an int or a bool (a float is refused: 1.0 and 1 would be two classes to a
    reader of the JSON and one to the metrics); a regression target is a finite number, not a bool.

    Raises:
        BadRequest: naming ``where`` (the field or column) and what it holds.
    """
    if task == "classification":
        if not isinstance(value, str | int):  # bool is an int
            raise BadRequest(f"{where}: a classification label is a string, int or bool, got {_kind(value)}")
        if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            raise BadRequest(f"{where}: a classification label that is an int fits in 64 bits, got {value}")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{where}: a regression target is a number, got {_kind(value)}")
    elif not math.isfinite(value):
        raise BadRequest(f"{where}: a regression target is a finite number, got {value}")
    return msgspec.json.encode(value).decode()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a bool", float: "a float", str: "a string", int: "an int"}.get(type(value), type(value).__name__)
