"""Inference requests and responses: JSON tensors, with binary tensors delegated to :mod:`binary_codec`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from driftline.errors import BadRequest
from driftline.protocol.binary_codec import read_binary_tensor, tensor_bytes
from driftline.protocol.datatypes import to_datatype, to_numpy_dtype
from driftline.protocol.types import InferenceRequest, InferenceResponse, ResponseOutput

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt

__all__ = ["DecodedRequest", "decode_infer_request", "encode_infer_response"]

_decoder = msgspec.json.Decoder(InferenceRequest)
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class DecodedRequest:
    """An inference request with its tensors as numpy arrays."""

    id: str | None
    parameters: dict[str, Any]
    inputs: dict[str, npt.NDArray[Any]]
    input_parameters: dict[str, dict[str, Any]]
    outputs: list[str] | None
    binary_outputs: set[str] | bool


def _bytes_tensor(data: Any, name: str) -> npt.NDArray[np.object_]:
    items = np.array(data, dtype=object)
    flat = items.ravel()
    out = np.empty(flat.size, dtype=object)
    for i, item in enumerate(flat):
        if isinstance(item, str):
            out[i] = item.encode()
        else:
            raise BadRequest(f"input '{name}': BYTES data must be strings, got {type(item).__name__}")
    return out.reshape(items.shape)


def _json_tensor(data: Any, name: str, datatype: str, dtype: np.dtype[Any], shape: list[int]) -> npt.NDArray[Any]:
    """Turn a JSON ``data`` list (flat or nested) into an array of the declared datatype and shape."""
    kind = dtype.kind
    try:
        if kind == "O":
            array = _bytes_tensor(data, name)
        elif kind == "f":
            array = np.asarray(data, dtype=dtype)
        else:
            # Integers and booleans: infer first so that 1.5 or true is refused instead of silently cast.
            array = np.asarray(data)
            if array.size and not (array.dtype.kind == kind or (kind in "iu" and array.dtype.kind in "iu")):
                raise BadRequest(f"input '{name}': data of {datatype} must be {_KIND_WORDS[kind]}, got {array.dtype}")
            if kind in "iu" and array.size:
                info = np.iinfo(dtype)
                if array.min() < info.min or array.max() > info.max:
                    raise BadRequest(f"input '{name}': data is out of range for {datatype}")
            array = array.astype(dtype, copy=False)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequest(f"input '{name}': data does not fit datatype {datatype}: {exc}") from None
    count = math.prod(shape)
    if array.size != count:
        raise BadRequest(f"input '{name}': shape {shape} needs {count} elements, got {array.size}")
    return array.reshape(shape)


_KIND_WORDS = {"b": "true/false", "i": "integers", "u": "integers"}


def decode_infer_request(body: bytes, header_length: int | None = None) -> DecodedRequest:
    """Decode an inference request body: pure JSON, or a JSON header followed by binary tensor data.

    Args:
        body: the whole request body.
        header_length: the ``Inference-Header-Content-Length`` header, when the request uses the binary extension.

    Raises:
        BadRequest: naming the input or field that is wrong and what was expected.
    """
    if header_length is None:
        header, binary = body, memoryview(b"")
    else:
        if not 0 <= header_length <= len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length is {header_length} but the body has only {len(body)} bytes"
            )
        header, binary = body[:header_length], memoryview(body)[header_length:]
    try:
        request = _decoder.decode(header)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid inference request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    inputs: dict[str, npt.NDArray[Any]] = {}
    input_parameters: dict[str, dict[str, Any]] = {}
    offset = 0
    for item in request.inputs:
        name = item.name
        if name in inputs:
            raise BadRequest(f"input '{name}' appears twice in the request")
        try:
            dtype = to_numpy_dtype(item.datatype)
        except BadRequest as exc:
            raise BadRequest(f"input '{name}': {exc}") from None
        shape = item.shape
        if any(d < 0 for d in shape):
            raise BadRequest(f"input '{name}': shape {shape} has a negative dimension")
        params = item.parameters
        size = params.pop("binary_data_size", None) if params else None
        if size is not None:
            inputs[name], offset = read_binary_tensor(binary, offset, size, name, item.datatype, dtype, shape)
        elif item.data is None:
            raise BadRequest(f"input '{name}' has neither data nor parameters.binary_data_size")
        else:
            inputs[name] = _json_tensor(item.data, name, item.datatype, dtype, shape)
        input_parameters[name] = params or {}
    if offset != len(binary):
        raise BadRequest(f"the body has {len(binary)} bytes of binary data but the inputs declare {offset}")
    parameters = request.parameters or {}
    default_binary = bool(parameters.get("binary_data_output", False))
    outputs: list[str] | None = None
    binary_outputs: set[str] | bool = default_binary
    if request.outputs is not None:
        outputs = [o.name for o in request.outputs]
        if len(set(outputs)) != len(outputs):
            raise BadRequest(f"outputs {outputs} name an output twice")
        binary_outputs = {o.name for o in request.outputs if (o.parameters or {}).get("binary_data", default_binary)}
    return DecodedRequest(request.id, parameters, inputs, input_parameters, outputs, binary_outputs)


def _json_data(array: npt.NDArray[Any], datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [
            item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item) for item in array.ravel()
        ]
    data: list[Any] = array.ravel().tolist()
    return data


def encode_infer_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Mapping[str, npt.NDArray[Any]],
    binary_outputs: set[str] | bool = False,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Encode an inference response.

    Returns:
        The body and, when any output is binary, the length of the JSON header (else None: a pure JSON body).
    """
    encoded: list[ResponseOutput] = []
    blobs: list[bytes] = []
    for name, array in outputs.items():
        datatype = to_datatype(array.dtype)
        shape = list(array.shape)
        if binary_outputs is True or (binary_outputs and name in binary_outputs):
            raw = tensor_bytes(array, datatype)
            encoded.append(ResponseOutput(name, datatype, shape, parameters={"binary_data_size": len(raw)}))
            blobs.append(raw)
        else:
            encoded.append(ResponseOutput(name, datatype, shape, data=_json_data(array, datatype)))
    header = _encoder.encode(
        InferenceResponse(
            model_name=model_name, model_version=model_version, id=request_id, parameters=parameters, outputs=encoded
        )
    )
    if not blobs:
        return header, None
    return b"".join((header, *blobs)), len(header)
