"""Hostile requests (huge shapes, deep nesting, values a datatype cannot hold) are a BadRequest, never a crash.

Sizes are checked against the body before any array is built: tracemalloc (which sees numpy's buffers) bounds
what decoding a tiny body that declares an enormous tensor may allocate.
"""

from __future__ import annotations

import json
import math
import re
import tracemalloc
from typing import Any

import numpy as np
import pytest
from tests.protocol.test_codec_errors import _binary, _json, _x

from driftline.errors import BadRequest
from driftline.protocol.codec import MAX_DIMS, decode_infer_request
from driftline.protocol.json_codec import MAX_PARAMETER_DEPTH

ALL_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
ALL_DATATYPES += ["FP16", "FP32", "FP64", "BYTES"]


def _refused_within(limit_bytes: int, body: bytes, header_length: int | None, message: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(BadRequest, match=re.escape(message)):
            decode_infer_request(body, header_length)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit_bytes, f"decoding a {len(body)}-byte body peaked at {peak} bytes"


@pytest.mark.parametrize("datatype", ALL_DATATYPES)
@pytest.mark.parametrize("size", [0, 4])
def test_binary_shape_larger_than_its_bytes_allocates_nothing(datatype: str, size: int) -> None:
    # 3 million elements: before the check, BYTES built a 24 MB object array before reading one length.
    body, header_length = _binary(_x(datatype, [3_000_000], parameters={"binary_data_size": size}), b"\0" * size)
    _refused_within(1 << 20, body, header_length, "input 'x': ")


def test_binary_bytes_shape_needs_a_length_per_element() -> None:
    body, header_length = _binary(_x("BYTES", [300_000_000], parameters={"binary_data_size": 0}), b"")
    message = "input 'x': shape [300000000] of BYTES needs at least 1200000000 bytes (a 4-byte length per element)"
    _refused_within(1 << 20, body, header_length, message)


@pytest.mark.parametrize("datatype", ALL_DATATYPES)
def test_json_shape_larger_than_its_data_allocates_nothing(datatype: str) -> None:
    body = _json(_x(datatype, [300_000_000], data=[]))
    _refused_within(1 << 20, body, None, "input 'x': shape [300000000] needs 300000000 elements, got 0")


SHAPES_NUMPY_CANNOT_HOLD: list[tuple[str, list[int], str]] = [
    ("empty-but-huge", [0, 2**63 - 1], "input 'x': shape [0, 9223372036854775807] of FP32 is too large"),
    ("empty-overflowing-bytes", [0, 2**61], "input 'x': shape [0, 2305843009213693952] of FP32 is too large"),
    ("empty-product-overflow", [0, 2**32, 2**32], "input 'x': shape [0, 4294967296, 4294967296] of FP32"),
    ("past-u64", [2**64], "input 'x': shape [18446744073709551616] of FP32 is too large"),
    ("too-many-dims", [1] * (MAX_DIMS + 1), f"input 'x': shape has {MAX_DIMS + 1} dimensions, at most {MAX_DIMS}"),
    ("zero-too-many-dims", [0] * 1000, "input 'x': shape has 1000 dimensions"),
]


@pytest.mark.parametrize(
    ("shape", "message"), [c[1:] for c in SHAPES_NUMPY_CANNOT_HOLD], ids=[c[0] for c in SHAPES_NUMPY_CANNOT_HOLD]
)
@pytest.mark.parametrize("binary", [False, True])
def test_shapes_numpy_cannot_represent(shape: list[int], message: str, binary: bool) -> None:
    if binary:
        body, header_length = _binary(_x(shape=shape, parameters={"binary_data_size": 0}), b"")
    else:
        body, header_length = _json(_x(shape=shape, data=[])), None
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode_infer_request(body, header_length)


def test_largest_representable_empty_shapes_still_decode() -> None:
    decoded = decode_infer_request(_json(_x("UINT8", [0, 2**62], data=[])))
    assert decoded.inputs["x"].shape == (0, 2**62)
    decoded = decode_infer_request(_json(_x(shape=[1] * MAX_DIMS, data=[1.5])))
    assert decoded.inputs["x"].ndim == MAX_DIMS


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# Where any JSON value may stand, the parser descends until its recursion limit; where the type is known
# (an id is a string), the first bracket is already the error.
DEEP_PLACES: list[tuple[str, bytes, str]] = [
    ("request-parameters", b'{"inputs": [], "parameters": {"p": %s}}', "nested too deeply"),
    ("unknown-key", b'{"inputs": [], "zzz": %s}', "nested too deeply"),
    ("data", b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": %s}]}', "nested too deeply"),
    (
        "nested-data",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": %s}]}',
        "nested too deeply",
    ),
    (
        "input-parameters",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"p": %s}}]}',
        "nested too deeply",
    ),
    ("outputs", b'{"inputs": [], "outputs": [{"name": "y", "parameters": {"p": %s}}]}', "nested too deeply"),
    ("id", b'{"inputs": [], "id": %s}', "Expected `str | null`, got `array` - at `$.id`"),
    ("top", b"%s", "Expected `object`, got `array`"),
]


@pytest.mark.parametrize(("template", "message"), [c[1:] for c in DEEP_PLACES], ids=[c[0] for c in DEEP_PLACES])
@pytest.mark.parametrize("levels", [1_000, 100_000])
@pytest.mark.parametrize("binary", [False, True])
def test_json_nested_past_the_parser_limit(template: bytes, message: str, levels: int, binary: bool) -> None:
    body = template % _deep(levels)
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode_infer_request(body, len(body) if binary else None)


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("", {"inputs": [], "parameters": {"p": "DEEP"}}),
        ("input 'x': ", {"inputs": [_x(shape=[1], data=[1.0], parameters={"p": "DEEP"})]}),
        ("output 'y': ", {"inputs": [], "outputs": [{"name": "y", "parameters": {"p": "DEEP"}}]}),
    ],
)
def test_parameters_nested_past_the_parameter_limit(where: str, body: dict[str, Any]) -> None:
    def with_depth(levels: int) -> bytes:
        value: Any = 1
        for i in range(levels):
            value = [value] if i % 2 else {"k": value}
        return json.dumps(body).replace('"DEEP"', json.dumps(value)).encode()

    decode_infer_request(with_depth(MAX_PARAMETER_DEPTH))
    message = f"{where}parameter 'p' is nested more than {MAX_PARAMETER_DEPTH} levels deep"
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode_infer_request(with_depth(MAX_PARAMETER_DEPTH + 1))


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"BOOL","data":[5,1',
        b'{"inputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[300,1',
        b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}',
        b'{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":[1',
    ],
)
def test_type_invalid_and_truncated_at_once(body: bytes) -> None:
    with pytest.raises(BadRequest, match="malformed JSON in inference request: Input data was truncated"):
        decode_infer_request(body)
    with pytest.raises(BadRequest, match="malformed JSON in inference request"):
        decode_infer_request(body, len(body))


OUT_OF_RANGE: list[tuple[str, list[Any], str]] = [
    ("FP32", [1.0, 1e308], "input 'x': data element 1 (1e+308) is out of range for datatype FP32"),
    ("FP32", [-3.5e38], "input 'x': data element 0 (-3.5e+38) is out of range for datatype FP32"),
    ("FP16", [65520.0], "input 'x': data element 0 (65520.0) is out of range for datatype FP16"),
    ("FP16", [[1.0], [-1e6]], "input 'x': data element 1 (-1000000.0) is out of range for datatype FP16"),
    ("BF16", [3.4e38], "input 'x': data element 0 (3.4e+38) is out of range for datatype BF16"),
    ("BF16", [None, 1e300], "input 'x': data element 1 (1e+300) is out of range for datatype BF16"),
]


@pytest.mark.parametrize(("datatype", "data", "message"), OUT_OF_RANGE)
def test_finite_json_values_that_overflow_the_datatype(datatype: str, data: list[Any], message: str) -> None:
    if datatype == "BF16":
        pytest.importorskip("ml_dtypes")
    shape = [len(data), 1] if isinstance(data[0], list) else [len(data)]
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode_infer_request(_json(_x(datatype, shape, data=data)))


@pytest.mark.parametrize(("datatype", "largest"), [("FP16", 65504.0), ("FP32", 3.4028234663852886e38)])
def test_the_largest_finite_values_stay_accepted(datatype: str, largest: float) -> None:
    decoded = decode_infer_request(_json(_x(datatype, [2], data=[largest, -largest])))
    assert np.isfinite(decoded.inputs["x"]).all()


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64", "BF16"])
def test_json_null_stands_for_nan(datatype: str) -> None:
    if datatype == "BF16":
        pytest.importorskip("ml_dtypes")
    decoded = decode_infer_request(_json(_x(datatype, [3], data=[1.5, None, -2.0])))
    got = decoded.inputs["x"].astype(np.float64)
    assert got[0] == 1.5
    assert math.isnan(got[1])
    assert got[2] == -2.0


def test_binary_tensors_carry_infinities_exactly() -> None:
    raw = np.array([np.inf, -np.inf, np.nan], np.float32)
    body, header_length = _binary(_x(shape=[3], parameters={"binary_data_size": 12}), raw.tobytes())
    got = decode_infer_request(body, header_length).inputs["x"]
    assert np.isposinf(got[0])
    assert np.isneginf(got[1])
    assert np.isnan(got[2])
