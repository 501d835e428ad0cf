"""Checks a decoded request against a model version's signature before it is queued."""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.errors import BadRequest
from driftline.protocol.datatypes import to_datatype

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import numpy.typing as npt

    from driftline.serving.loaded import LoadedModel

__all__ = ["check_request"]


def check_request(model: LoadedModel, inputs: Mapping[str, npt.NDArray[np.generic]], outputs: list[str] | None) -> int:
    """Validate inputs (names, datatypes, shapes, batch size) and requested outputs.

    Returns:
        The request's row count (its batch dimension), or 1 when the model does not batch.

    Raises:
        BadRequest: naming the input or output and what was expected.
    """
    label = f"model '{model.name}' version {model.version}"
    specs = model.inputs
    if len(inputs) != len(specs) or any(s.name not in inputs for s in specs):
        expected = [s.name for s in specs]
        missing = [n for n in expected if n not in inputs]
        unknown = [n for n in inputs if n not in expected]
        parts = [
            f"missing input(s) {missing}" if missing else "",
            f"unknown input(s) {unknown}" if unknown else "",
        ]
        raise BadRequest(f"{label}: {' and '.join(p for p in parts if p)}; expected inputs {expected}")
    batching = model.max_batch_size > 0
    rows = -1
    for spec in specs:
        array = inputs[spec.name]
        datatype = to_datatype(array.dtype)
        if datatype != spec.datatype:
            raise BadRequest(f"{label}: input '{spec.name}' expects datatype {spec.datatype}, got {datatype}")
        if datatype == "BYTES":
            _check_text(label, spec.name, array)
        shape = array.shape
        if len(shape) != len(spec.shape) or any(e != -1 and d != e for d, e in zip(shape, spec.shape, strict=True)):
            raise BadRequest(f"{label}: input '{spec.name}' expects shape {list(spec.shape)}, got {list(shape)}")
        if batching:
            if rows == -1:
                rows = shape[0]
            elif shape[0] != rows:
                raise BadRequest(
                    f"{label}: input '{spec.name}' has {shape[0]} rows but other inputs have {rows}; "
                    "every input needs the same batch dimension"
                )
    if batching:
        if rows < 1:
            raise BadRequest(f"{label}: input '{specs[0].name}' has 0 rows; a request needs at least one")
        if rows > model.max_batch_size:
            raise BadRequest(
                f"{label}: input '{specs[0].name}' has {rows} rows, more than max_batch_size {model.max_batch_size}"
            )
    if outputs:
        known = {s.name for s in model.outputs}
        unknown_out = [n for n in outputs if n not in known]
        if unknown_out:
            raise BadRequest(f"{label}: unknown output(s) {unknown_out}; the model has {sorted(known)}")
    return rows if batching else 1


def _check_text(label: str, name: str, array: npt.NDArray[np.generic]) -> None:
    # Only ONNX models take BYTES (torch refuses them at load), and ONNX strings are UTF-8 text: bytes that are not
    # would fail the whole batch in the worker (a 500 for every request in it), so they are refused here.
    for i, value in enumerate(array.reshape(-1).tolist()):
        if isinstance(value, bytes):
            try:
                value.decode()
            except UnicodeDecodeError as exc:
                raise BadRequest(
                    f"{label}: input {name!r} element {i} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                    "the model's BYTES inputs are strings"
                ) from None
