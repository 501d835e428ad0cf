"""What a bulk scoring job is: model reference, inputs, output, and how columns map to tensors."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from driftline.errors import BadRequest
from driftline.repository.names import ALIAS_MAX_LENGTH, ALIAS_PATTERN, MODEL_NAME_PATTERN

__all__ = ["JobSpec", "parse_model_ref"]

_REF = re.compile(rf"^(?P<name>{MODEL_NAME_PATTERN})(?::(?P<version>\d+)|@(?P<alias>{ALIAS_PATTERN}))?\Z")


def parse_model_ref(ref: str) -> tuple[str, str | None]:
    """``iris`` -> ``("iris", None)``; ``iris:2`` -> ``("iris", "2")``; ``iris@champion`` -> ``("iris", "champion")``.

    An alias comes back as it is; the caller resolves it to a version number before the job starts, so a job that
    resumes later scores with the same version even if the alias moved meanwhile.

    Raises:
        BadRequest: the reference is not ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``.
    """
    match = _REF.match(ref)
    if match is None:
        raise BadRequest(
            f"model reference {ref!r} must be NAME, NAME:VERSION or NAME@ALIAS (e.g. iris:2, iris@champion)"
        )
    alias = match["alias"]
    if alias is not None and len(alias) > ALIAS_MAX_LENGTH:
        raise BadRequest(f"model reference {ref!r}: an alias has at most {ALIAS_MAX_LENGTH} characters")
    return match["name"], match["version"] or alias


class JobSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A scoring job; written to ``<output>/_job.json`` so that ``--resume`` can check it is the same job."""

    model: str
    inputs: list[str]
    output: str
    repository: str = "demo-models"
    version: str | None = None
    batch_size: int = 1024
    chunk_rows: int = 65_536
    # Input tensor name -> the columns that make its feature dimension, in order; None = derive (see sources.py).
    columns: dict[str, list[str]] | None = None
    passthrough: list[str] = []
    # Rows with nulls in model columns: "reject" drops and counts them, "file" also writes them to rejects/,
    # "fail" stops the job before it scores anything.
    on_null: Literal["reject", "file", "fail"] = "reject"
    instances: int = 1
    # Capture the scored rows (arm "bulk") as the server captures requests; entity keys from this column.
    capture: bool = False
    entity_column: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {self.chunk_rows}")
        if self.instances < 1:
            raise ValueError(f"instances must be >= 1, got {self.instances}")
        if not self.inputs:
            raise ValueError("a job needs at least one input")
        if self.entity_column is not None and not self.capture:
            raise ValueError("entity_column (--entity-column) applies only with capture (--capture)")
