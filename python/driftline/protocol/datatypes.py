"""The map between Open Inference Protocol datatype names and numpy dtypes."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any, Final

import numpy as np

from driftline.errors import BadRequest

__all__ = ["DATATYPES", "to_datatype", "to_numpy_dtype"]

# Explicit little-endian dtypes: the binary extension is little-endian on the wire whatever the host is.
_NUMERIC: Final[dict[str, np.dtype[Any]]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_BYTES: Final = np.dtype(object)

#: Every datatype name this server understands (BF16 needs ml_dtypes at run time).
DATATYPES: Final[frozenset[str]] = frozenset([*_NUMERIC, "BYTES", "BF16"])

# (kind, itemsize) -> name, so that a big-endian or native-order dtype maps like its little-endian twin.
_BY_KIND: Final[dict[tuple[str, int], str]] = {(dt.kind, dt.itemsize): name for name, dt in _NUMERIC.items()}


@cache
def _bfloat16() -> np.dtype[Any] | None:
    # NOTE: numpy has no bfloat16; ml_dtypes (a dependency of tritonclient, not of driftline) provides one.
    # Use it when it happens to be installed rather than adding a dependency for a rare datatype.
    try:
        module = importlib.import_module("ml_dtypes")
    except ImportError:
        return None
    bf16: np.dtype[Any] = np.dtype(module.bfloat16)
    return bf16


def to_numpy_dtype(datatype: str) -> np.dtype[Any]:
    """Return the numpy dtype that holds tensors of an Open Inference Protocol datatype.

    Args:
        datatype: A protocol datatype name such as ``"FP32"`` or ``"BYTES"``.

    Returns:
        The little-endian numpy dtype; ``object`` for ``BYTES`` (elements are ``bytes``).

    Raises:
        BadRequest: The datatype is unknown, or is ``BF16`` and ``ml_dtypes`` is not installed.
    """
    dtype = _NUMERIC.get(datatype)
    if dtype is not None:
        return dtype
    if datatype == "BYTES":
        return _BYTES
    if datatype == "BF16":
        bf16 = _bfloat16()
        if bf16 is None:
            raise BadRequest("datatype BF16 is not supported (numpy has no bfloat16 and ml_dtypes is absent)")
        return bf16
    raise BadRequest(f"unknown datatype {datatype!r}; expected one of {', '.join(sorted(DATATYPES))}")


def to_datatype(dtype: np.dtype[Any]) -> str:
    """Return the Open Inference Protocol datatype name for a numpy dtype.

    Args:
        dtype: A numpy dtype of any byte order.

    Returns:
        The protocol datatype name; object, ``str`` and ``bytes`` dtypes map to ``"BYTES"``.

    Raises:
        ValueError: The dtype (complex, datetime, structured...) has no protocol datatype.
    """
    kind = dtype.kind
    if kind in "OSU":
        return "BYTES"
    name = _BY_KIND.get((kind, dtype.itemsize))
    if name is not None:
        return name
    if dtype.name == "bfloat16":
        return "BF16"
    raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")
