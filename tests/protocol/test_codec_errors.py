"""Every malformed request is a BadRequest whose message names the input or field and what was expected."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

import numpy as np
import pytest

from driftline.errors import BadRequest, InferenceFailed
from driftline.protocol.codec import decode_infer_request, encode_infer_response


def _json(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def _x(datatype: str = "FP32", shape: list[int] | None = None, **fields: Any) -> dict[str, Any]:
    return {"name": "x", "shape": [2, 3] if shape is None else shape, "datatype": datatype, **fields}


def _binary(tensor: dict[str, Any], payload: bytes, header_length_delta: int = 0) -> tuple[bytes, int]:
    header = _json(tensor)
    return header + payload, len(header) + header_length_delta


def _bytes_payload(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


JSON_CASES: list[tuple[str, bytes, str]] = [
    ("malformed", b'{"inputs": [', "malformed JSON in inference request: Input data was truncated"),
    ("malformed-char", b'{"inputs": [}', "malformed JSON in inference request: JSON is malformed"),
    ("not-object", b"[]", "invalid inference request: Expected `object`, got `array`"),
    ("missing-inputs", b'{"id": "a"}', "invalid inference request: Object missing required field `inputs`"),
    ("shape-type", _json(_x(shape=["2"], data=[1])), "at `$.inputs[0].shape[0]`"),
    ("missing-datatype", b'{"inputs":[{"name":"x","shape":[1],"data":[1]}]}', "required field `datatype`"),
    (
        "duplicate",
        _json(_x(shape=[1], data=[1]), _x(shape=[1], data=[2])),
        "input 'x' appears more than once",
    ),
    ("datatype", _json(_x("FLOAT", data=[1] * 6)), "input 'x': unknown datatype 'FLOAT'"),
    ("negative-dim", _json(_x(shape=[2, -1], data=[])), "input 'x': shape [2, -1] has a negative dimension"),
    ("count", _json(_x(data=[1.0] * 5)), "input 'x': shape [2, 3] needs 6 elements, got 5"),
    ("count-more", _json(_x(data=[1.0] * 7)), "input 'x': shape [2, 3] needs 6 elements, got 7"),
    (
        "str-for-fp32",
        _json(_x(shape=[2], data=[1.0, "2"])),
        "input 'x': data does not fit datatype FP32: Expected `float | null`, got `str` - at `data[1]`",
    ),
    ("bool-for-fp32", _json(_x(shape=[1], data=[True])), "input 'x': data does not fit datatype FP32"),
    (
        "float-for-int",
        _json(_x("INT32", shape=[1], data=[1.5])),
        "input 'x': data does not fit datatype INT32",
    ),
    ("int8-range", _json(_x("INT8", shape=[1], data=[128])), "input 'x': data does not fit datatype INT8"),
    (
        "uint8-negative",
        _json(_x("UINT8", shape=[1], data=[-1])),
        "input 'x': data does not fit datatype UINT8",
    ),
    (
        "uint64-range",
        _json(_x("UINT64", shape=[1], data=[2**64])),
        "input 'x': data does not fit datatype UINT64: a value is out of range",
    ),
    ("int-for-bool", _json(_x("BOOL", shape=[1], data=[1])), "input 'x': data does not fit datatype BOOL"),
    ("int-for-bytes", _json(_x("BYTES", shape=[1], data=[1])), "input 'x': data does not fit datatype BYTES"),
    ("ragged", _json(_x(shape=[2, 2], data=[[1, 2], [3]])), "input 'x': nested data is ragged"),
    (
        "ragged-bytes",
        _json(_x("BYTES", shape=[2, 2], data=[["a", "b"], ["c"]])),
        "input 'x': nested data is ragged",
    ),
    (
        "nest-shape",
        _json(_x(shape=[4, 1], data=[[1, 2], [3, 4]])),
        "nested data has shape [2, 2], expected [4, 1]",
    ),
    ("too-deep", _json(_x(shape=[1, 1], data=[[[1]]])), "input 'x': data does not fit datatype FP32"),
    ("nested-1d", _json(_x(shape=[2], data=[[1], [2]])), "input 'x': data does not fit datatype FP32"),
    ("no-data", _json(_x()), "input 'x' has neither data nor parameters.binary_data_size"),
    ("null-data", _json(_x(data=None)), "input 'x' has neither data nor parameters.binary_data_size"),
    ("data-not-list", _json(_x(shape=[1], data=1.0)), "input 'x': data does not fit datatype FP32"),
    ("shm", _json(_x(data=[1] * 6, parameters={"shared_memory_region": "r"})), "input 'x': parameter"),
    (
        "binary-without-header-length",
        _json(_x(parameters={"binary_data_size": 24})),
        "input 'x' has binary_data_size but the request has no Inference-Header-Content-Length",
    ),
    (
        "dup-output",
        _json(_x(data=[1] * 6), outputs=[{"name": "y"}, {"name": "y"}]),
        "output 'y' is requested more",
    ),
    (
        "classification",
        _json(_x(data=[1] * 6), outputs=[{"name": "y", "parameters": {"classification": 3}}]),
        "output 'y': parameter 'classification' is not supported",
    ),
    (
        "binary-data-type",
        _json(_x(data=[1] * 6), outputs=[{"name": "y", "parameters": {"binary_data": "yes"}}]),
        "output 'y': parameter 'binary_data' must be a boolean",
    ),
    (
        "binary-data-output-type",
        _json(_x(data=[1] * 6), parameters={"binary_data_output": 1}),
        "parameter 'binary_data_output' must be true or false",
    ),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_json_request_errors(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode_infer_request(body)


FP32_2X3 = np.zeros(6, np.float32).tobytes()
BINARY_CASES: list[tuple[str, tuple[bytes, int], str]] = [
    (
        "size-vs-shape",
        _binary(_x(parameters={"binary_data_size": 20}), FP32_2X3[:20]),
        "input 'x': binary_data_size is 20 but shape [2, 3] of FP32 needs 24 bytes",
    ),
    (
        "size-negative",
        _binary(_x(parameters={"binary_data_size": -4}), FP32_2X3),
        "input 'x': binary_data_size must be a non-negative integer, got -4",
    ),
    (
        "size-bool",
        _binary(_x(parameters={"binary_data_size": True}), FP32_2X3),
        "input 'x': binary_data_size must be a non-negative integer, got True",
    ),
    (
        "data-and-size",
        _binary(_x(data=[0] * 6, parameters={"binary_data_size": 24}), FP32_2X3),
        "input 'x' has both data and parameters.binary_data_size",
    ),
    (
        "section-shorter",
        _binary(_x(parameters={"binary_data_size": 24}), FP32_2X3[:16]),
        "input 'x': binary_data_size 24 runs past the end of the body",
    ),
    (
        "section-longer",
        _binary(_x(parameters={"binary_data_size": 24}), FP32_2X3 + b"\0\0"),
        "binary section has 26 bytes but the inputs' binary_data_size sum to 24",
    ),
    (
        "header-cut",
        _binary(_x(parameters={"binary_data_size": 24}), FP32_2X3, header_length_delta=-3),
        "malformed JSON in inference request",
    ),
    (
        "bytes-length-past-end",
        _binary(_x("BYTES", [2], parameters={"binary_data_size": 13}), _bytes_payload(b"ab") + b"\x09\0\0\0abc"),
        "input 'x': BYTES element 1 has length 9, running past the 13 bytes of binary_data_size",
    ),
    (
        "bytes-too-few",
        _binary(_x("BYTES", [3], parameters={"binary_data_size": 12}), _bytes_payload(b"ab", b"cd")),
        "input 'x': BYTES binary data ends after 2 of 3 elements (shape [3])",
    ),
    (
        "bytes-too-many",
        _binary(_x("BYTES", [1], parameters={"binary_data_size": 12}), _bytes_payload(b"ab", b"cd")),
        "input 'x': BYTES binary data has 6 bytes left after the 1 elements of shape [1]",
    ),
    (
        "bytes-truncated-length",
        _binary(_x("BYTES", [2], parameters={"binary_data_size": 8}), _bytes_payload(b"ab") + b"\x01\0"),
        "input 'x': BYTES binary data ends after 1 of 2 elements",
    ),
]


@pytest.mark.parametrize(("request_", "message"), [c[1:] for c in BINARY_CASES], ids=[c[0] for c in BINARY_CASES])
def test_binary_request_errors(request_: tuple[bytes, int], message: str) -> None:
    body, header_length = request_
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode_infer_request(body, header_length)


@pytest.mark.parametrize("header_length", [-1, 10_000])
def test_header_length_outside_body(header_length: int) -> None:
    body = _json(_x(data=[0] * 6))
    with pytest.raises(BadRequest, match=f"Inference-Header-Content-Length is {header_length} but the body has"):
        decode_infer_request(body, header_length)


def test_bf16_json_roundtrip_error_without_ml_dtypes(monkeypatch: pytest.MonkeyPatch) -> None:
    from driftline.protocol import datatypes

    monkeypatch.setattr(datatypes, "_bfloat16", lambda: None)
    with pytest.raises(BadRequest, match=re.escape("input 'x': datatype BF16 is not supported")):
        decode_infer_request(_json(_x("BF16", data=[0.0] * 6)))


def test_non_utf8_bytes_output_must_go_binary() -> None:
    out = {"blob": np.array([b"\xff\xfe"], dtype=object)}
    with pytest.raises(BadRequest, match="output 'blob' holds bytes that are not valid UTF-8"):
        encode_infer_response("m", "1", None, out)
    body, header_length = encode_infer_response("m", "1", None, out, binary_outputs=True)
    assert body.endswith(b"\x02\0\0\0\xff\xfe")
    assert header_length == len(body) - 6


def test_output_dtype_without_datatype_is_an_inference_failure() -> None:
    with pytest.raises(InferenceFailed, match="output 'z': numpy dtype complex128"):
        encode_infer_response("m", "1", None, {"z": np.zeros(2, np.complex128)})
