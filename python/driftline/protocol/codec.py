"""The protocol's two entry points: a request body to numpy arrays, and numpy arrays to a response body."""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np

from driftline.errors import BadRequest, InferenceFailed
from driftline.protocol.binary_codec import decode_binary, encode_binary
from driftline.protocol.datatypes import to_datatype, to_numpy_dtype
from driftline.protocol.json_codec import (
    HeaderInput,
    WireOutput,
    check_parameters,
    decode_data,
    decode_header,
    encode_data,
)
from driftline.protocol.types import InferenceResponse, ResponseOutput

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DecodedRequest", "decode_infer_request", "encode_infer_response"]

_ENCODER: Final = msgspec.json.Encoder()
_SHARED_MEMORY: Final = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
# What numpy can build: NPY_MAXDIMS dimensions (64 from numpy 2, 32 before), and at most intp-max bytes counted
# over the non-zero dimensions (numpy refuses [0, 2**63 - 1] although it holds nothing).
MAX_DIMS: Final = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
_MAX_BYTES: Final = int(np.iinfo(np.intp).max)


@dataclass(slots=True)
class DecodedRequest:
    """An inference request, decoded and checked against itself (not yet against a model's signature).

    Attributes:
        id: The request's ``id``, if it has one.
        parameters: Request-level parameters (``{}`` if none).
        inputs: Input name -> array with the declared shape and dtype, in request order. Arrays from the
            binary section are read-only views of the request body.
        input_parameters: Input name -> its parameters without ``binary_data_size`` (``{}`` if none).
        outputs: Requested output names in request order; ``None`` asks for every output.
        binary_outputs: Which outputs go in the binary section: ``True`` all, ``False`` none, or a set of
            names.
    """

    id: str | None
    parameters: dict[str, Any]
    inputs: dict[str, np.ndarray[Any, Any]]
    input_parameters: dict[str, dict[str, Any]]
    outputs: list[str] | None
    binary_outputs: set[str] | bool


def decode_infer_request(body: bytes, header_length: int | None = None) -> DecodedRequest:
    """Decode an Open Inference Protocol request body, JSON or with Triton's binary tensor extension.

    Args:
        body: The whole HTTP request body.
        header_length: The ``Inference-Header-Content-Length`` header: the JSON is ``body[:header_length]``
            and binary inputs follow it in input order. ``None`` means the whole body is JSON.

    Returns:
        The decoded request.

    Raises:
        BadRequest: The body is malformed or inconsistent; the message names the input or field at fault.
    """
    if header_length is None:
        req = decode_header(body)
    else:
        if not 0 <= header_length <= len(body):
            raise BadRequest(f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes")
        view = memoryview(body)
        req = decode_header(view[:header_length])
    check_parameters("", req.parameters)
    offset = header_length or 0
    inputs: dict[str, np.ndarray[Any, Any]] = {}
    input_parameters: dict[str, dict[str, Any]] = {}
    for inp in req.inputs:
        arr, params, size = _decode_input(inp, body, header_length, offset, inputs)
        inputs[inp[0]] = arr
        input_parameters[inp[0]] = params
        offset += size
    if header_length is not None and offset != len(body):
        raise BadRequest(
            f"binary section has {len(body) - header_length} bytes but the inputs' binary_data_size "
            f"sum to {offset - header_length}"
        )
    parameters = req.parameters or {}
    outputs, binary_outputs = _requested_outputs(req.outputs, parameters)
    return DecodedRequest(req.id, parameters, inputs, input_parameters, outputs, binary_outputs)


def _decode_input(
    inp: HeaderInput, body: bytes, header_length: int | None, offset: int, seen: dict[str, Any]
) -> tuple[np.ndarray[Any, Any], dict[str, Any], int]:
    name, shape, datatype, params, data = inp
    if name in seen:
        raise BadRequest(f"input {name!r} appears more than once")
    try:
        dtype = to_numpy_dtype(datatype)
    except BadRequest as exc:
        raise BadRequest(f"input {name!r}: {exc}") from None
    count = _check_shape(name, shape, datatype, dtype)
    params = params or {}
    check_parameters(f"input {name!r}: ", params)
    size = params.pop("binary_data_size", None)
    for key in _SHARED_MEMORY:
        if key in params:
            raise BadRequest(f"input {name!r}: parameter {key!r}: shared-memory tensors are not supported")
    if size is None:
        if data is None:
            raise BadRequest(f"input {name!r} has neither data nor parameters.binary_data_size")
        return decode_data(name, data, datatype, dtype, shape, count), params, 0
    if type(size) is not int or size < 0:
        raise BadRequest(f"input {name!r}: binary_data_size must be a non-negative integer, got {_show(size)}")
    if data is not None:
        raise BadRequest(f"input {name!r} has both data and parameters.binary_data_size")
    if header_length is None:
        raise BadRequest(f"input {name!r} has binary_data_size but the request has no Inference-Header-Content-Length")
    if offset + size > len(body):
        raise BadRequest(
            f"input {name!r}: binary_data_size {size} runs past the end of the body: the binary section "
            f"has {len(body) - header_length} bytes, the inputs up to this one declare "
            f"{offset + size - header_length}"
        )
    view = memoryview(body)
    return decode_binary(name, view, offset, size, datatype, dtype, shape, count), params, size


def _check_shape(name: str, shape: Sequence[int], datatype: str, dtype: np.dtype[Any]) -> int:
    """Return ``prod(shape)`` once the shape is one numpy can build (checked before any data is read)."""
    if len(shape) > MAX_DIMS:
        raise BadRequest(f"input {name!r}: shape has {len(shape)} dimensions, at most {MAX_DIMS} are supported")
    if shape and min(shape) < 0:
        raise BadRequest(f"input {name!r}: shape {shape} has a negative dimension")
    count = math.prod(shape)
    # numpy bounds the bytes over the non-zero dimensions, so an empty tensor can be too large as well.
    if (count or math.prod(d for d in shape if d)) * dtype.itemsize > _MAX_BYTES:
        raise BadRequest(f"input {name!r}: shape {shape} of {datatype} is too large for any tensor")
    return count


def _show(value: object) -> str:
    # A client's value in a message: bounded in length and depth whatever was sent.
    return reprlib.repr(value)


def _requested_outputs(
    wire: list[WireOutput] | None, parameters: dict[str, Any]
) -> tuple[list[str] | None, set[str] | bool]:
    # Triton's rule: binary_data_output is the default for every output; an output's binary_data overrides it.
    default = parameters.get("binary_data_output", False)
    if type(default) is not bool:
        raise BadRequest(f"parameter 'binary_data_output' must be true or false, got {_show(default)}")
    if wire is None:
        return None, default
    names: list[str] = []
    binary: set[str] = set()
    for out in wire:
        name = out.name
        if name in binary or name in names:
            raise BadRequest(f"output {name!r} is requested more than once")
        names.append(name)
        flag = default
        if out.parameters:
            check_parameters(f"output {name!r}: ", out.parameters)
            flag = out.parameters.get("binary_data", default)
            if type(flag) is not bool:
                raise BadRequest(f"output {name!r}: parameter 'binary_data' must be a boolean, not {_show(flag)}")
            for key in ("classification", *_SHARED_MEMORY):
                if key in out.parameters:
                    raise BadRequest(f"output {name!r}: parameter {key!r} is not supported")
        if flag:
            binary.add(name)
    return names, binary or False


def encode_infer_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: dict[str, np.ndarray[Any, Any]],
    binary_outputs: set[str] | bool = False,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Encode an Open Inference Protocol response, putting the chosen outputs in the binary section.

    Args:
        model_name: The model's name.
        model_version: The version that ran (omitted from the body when empty).
        request_id: The request's ``id`` to echo, if it had one.
        outputs: Output name -> array, in the order the outputs should appear.
        binary_outputs: Which outputs to send as binary: ``True`` all, ``False`` none, or a set of names.
        parameters: Response-level parameters, if any.

    Returns:
        ``(body, header_length)``: ``header_length`` is ``None`` for a pure JSON body (``application/json``),
        else the length of the JSON header (send ``Inference-Header-Content-Length`` with it and
        ``application/octet-stream``).

    Raises:
        BadRequest: A JSON ``BYTES`` output is not valid UTF-8 (the client should ask for it as binary).
        InferenceFailed: An output's dtype has no protocol datatype.
    """
    entries: list[ResponseOutput] = []
    blobs: list[bytes | memoryview] = []
    for name, arr in outputs.items():
        try:
            datatype = to_datatype(arr.dtype)
        except ValueError as exc:
            raise InferenceFailed(f"output {name!r}: {exc}") from None
        if binary_outputs is True or (binary_outputs is not False and name in binary_outputs):
            blob = encode_binary(arr, datatype)
            blobs.append(blob)
            entries.append(ResponseOutput(name, list(arr.shape), datatype, parameters={"binary_data_size": len(blob)}))
        else:
            data = encode_data(name, arr, datatype)
            entries.append(ResponseOutput(name, list(arr.shape), datatype, data=data))
    header = _ENCODER.encode(
        InferenceResponse(model_name, entries, model_version or None, request_id, parameters or None)
    )
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)
