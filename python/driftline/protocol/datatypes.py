"""The protocol's tensor datatypes and the numpy dtypes that hold them."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftline.errors import BadRequest

__all__ = ["DATATYPES", "to_datatype", "to_numpy_dtype"]

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE: dict[np.dtype[Any], str] = {dtype: name for name, dtype in DATATYPES.items()}


def to_numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype for a protocol datatype (BYTES -> object arrays of ``bytes``).

    Raises:
        BadRequest: unknown datatype, or BF16, which numpy cannot hold.
    """
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        if datatype == "BF16":
            raise BadRequest("datatype BF16 is not supported (numpy has no bfloat16)")
        raise BadRequest(f"unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")
    return dtype


def to_datatype(dtype: np.dtype[Any]) -> str:
    """The protocol datatype for a numpy dtype; str, bytes and object arrays are BYTES.

    Raises:
        BadRequest: a dtype the protocol cannot carry (complex, datetime, ...).
    """
    name = _BY_DTYPE.get(dtype)
    if name is not None:
        return name
    if dtype.kind in "OSU":
        return "BYTES"
    normalized = _BY_DTYPE.get(dtype.newbyteorder("="))
    if normalized is not None:
        return normalized
    raise BadRequest(f"numpy dtype {dtype} has no protocol datatype")
