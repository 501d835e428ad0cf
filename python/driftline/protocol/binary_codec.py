"""Triton's binary tensor extension: raw little-endian tensors after the JSON header, BYTES with lengths."""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np

from driftline.errors import BadRequest

__all__ = ["decode_binary", "encode_binary"]

_LENGTH: Final = struct.Struct("<I")
_U8: Final = np.dtype(np.uint8)


def decode_binary(
    name: str,
    section: memoryview,
    offset: int,
    size: int,
    datatype: str,
    dtype: np.dtype[Any],
    shape: list[int],
    count: int,
) -> np.ndarray[Any, Any]:
    """Read one input tensor out of the binary section of a request.

    Numeric tensors are zero-copy, read-only views of the request body (copied only when the slice is
    misaligned for the dtype, because native code such as ORT or rust-numpy may assume alignment).

    Args:
        name: The input's name, for error messages.
        section: The whole request body.
        offset: Where this tensor's bytes start in ``section``.
        size: Its ``binary_data_size`` (the caller has checked that ``offset + size`` fits).
        datatype: The protocol datatype.
        dtype: Its numpy dtype.
        shape: The declared shape.
        count: ``prod(shape)``.

    Returns:
        An array with ``shape`` and ``dtype``; ``BYTES`` elements are ``bytes``.

    Raises:
        BadRequest: ``size`` does not match ``count`` times the item size, or a ``BYTES`` element length
            runs past the tensor's bytes or the element count is wrong; the message names the input.
    """
    if datatype == "BYTES":
        return _decode_bytes(name, section[offset : offset + size], shape, count)
    expected = count * dtype.itemsize
    if size != expected:
        raise BadRequest(
            f"input {name!r}: binary_data_size is {size} but shape {shape} of {datatype} needs {expected} bytes"
        )
    arr = np.frombuffer(section, dtype=dtype, count=count, offset=offset)
    if not arr.flags.aligned:
        arr = arr.copy()
    if datatype == "BOOL" and count and arr.view(_U8).max() > 1:
        # Bytes other than 0/1 are not valid numpy bools; read them as C does (nonzero is true).
        arr = arr.view(_U8) != 0
    return arr.reshape(shape)


def _decode_bytes(name: str, buf: memoryview, shape: list[int], count: int) -> np.ndarray[Any, Any]:
    end = len(buf)
    # Each element carries a 4-byte length: a shape the bytes cannot hold is refused before the array is made.
    if count * _LENGTH.size > end:
        raise BadRequest(
            f"input {name!r}: shape {shape} of BYTES needs at least {count * _LENGTH.size} bytes "
            f"(a 4-byte length per element) but binary_data_size is {end}"
        )
    # A Python loop is unavoidable here: every element becomes its own bytes object.
    out = np.empty(count, dtype=object)
    pos = 0
    unpack = _LENGTH.unpack_from
    for i in range(count):
        if pos + 4 > end:
            raise BadRequest(f"input {name!r}: BYTES binary data ends after {i} of {count} elements (shape {shape})")
        (length,) = unpack(buf, pos)
        pos += 4
        if pos + length > end:
            raise BadRequest(
                f"input {name!r}: BYTES element {i} has length {length}, running past the "
                f"{end} bytes of binary_data_size"
            )
        out[i] = bytes(buf[pos : pos + length])
        pos += length
    if pos != end:
        raise BadRequest(
            f"input {name!r}: BYTES binary data has {end - pos} bytes left after the {count} elements of shape {shape}"
        )
    return out.reshape(shape)


def encode_binary(arr: np.ndarray[Any, Any], datatype: str) -> bytes | memoryview:
    """Return the bytes of one output tensor for the binary section of a response.

    Args:
        arr: The output array.
        datatype: Its protocol datatype.

    Returns:
        The tensor's little-endian row-major bytes (a view when the array is already laid out so), or for
        ``BYTES`` each element as a 4-byte little-endian length followed by its bytes (``str`` as UTF-8).
    """
    if datatype == "BYTES":
        parts: list[bytes] = []
        append = parts.append
        pack = _LENGTH.pack
        for v in arr.reshape(-1).tolist():
            b = v if isinstance(v, bytes) else str(v).encode()
            append(pack(len(b)))
            append(b)
        return b"".join(parts)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    # uint8 view: memoryview cannot export every dtype (bfloat16), and bytes.join only needs the bytes.
    return np.ascontiguousarray(arr).reshape(-1).view(_U8).data
