"""Triton's binary tensor data extension: raw little-endian tensor bytes after the JSON header."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.errors import BadRequest

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["read_binary_tensor", "tensor_bytes"]

_LENGTH_PREFIX = 4


def _read_bytes_elements(chunk: memoryview, count: int, name: str) -> npt.NDArray[np.object_]:
    """BYTES in binary form: each element is a 4-byte little-endian length, then that many bytes."""
    out = np.empty(count, dtype=object)
    pos, end = 0, len(chunk)
    for i in range(count):
        if pos + _LENGTH_PREFIX > end:
            raise BadRequest(f"input '{name}': binary BYTES data ends after {i} of {count} elements")
        size = int.from_bytes(chunk[pos : pos + _LENGTH_PREFIX], "little")
        pos += _LENGTH_PREFIX
        if pos + size > end:
            raise BadRequest(f"input '{name}': binary BYTES element {i} has length {size}, past the end of its data")
        out[i] = bytes(chunk[pos : pos + size])
        pos += size
    if pos != end:
        raise BadRequest(f"input '{name}': binary BYTES data has {end - pos} bytes after its {count} elements")
    return out


def read_binary_tensor(
    buffer: memoryview, offset: int, size: Any, name: str, datatype: str, dtype: np.dtype[Any], shape: list[int]
) -> tuple[npt.NDArray[Any], int]:
    """Take one input's bytes from the binary section, without copying numeric data.

    Returns:
        The array (read-only, a view of the request body) and the offset where the next input's bytes begin.

    Raises:
        BadRequest: the size is not a non-negative integer, runs past the body, or does not match the shape.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest(f"input '{name}': parameters.binary_data_size must be a non-negative integer, got {size!r}")
    end = offset + size
    if end > len(buffer):
        raise BadRequest(
            f"input '{name}': binary_data_size {size} runs past the end of the body "
            f"({len(buffer) - offset} bytes left after the JSON header and earlier inputs)"
        )
    count = math.prod(shape)
    chunk = buffer[offset:end]
    if dtype.kind == "O":
        return _read_bytes_elements(chunk, count, name).reshape(shape), end
    expected = count * dtype.itemsize
    if size != expected:
        raise BadRequest(
            f"input '{name}': binary_data_size is {size} bytes but shape {shape} of {datatype} needs {expected}"
        )
    return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).reshape(shape), end


def tensor_bytes(array: npt.NDArray[Any], datatype: str) -> bytes:
    """An output's raw bytes for the binary section (row-major, little-endian; BYTES length-prefixed)."""
    if datatype == "BYTES":
        parts = []
        for item in array.ravel():
            raw = item if isinstance(item, bytes) else str(item).encode()
            parts.append(len(raw).to_bytes(_LENGTH_PREFIX, "little"))
            parts.append(raw)
        return b"".join(parts)
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
