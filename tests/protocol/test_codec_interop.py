"""The OIP codecs against Triton's own client code: its request bodies decode, our responses parse."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as httpclient

from driftline.protocol.codec import decode_infer_request, encode_infer_response
from driftline.protocol.datatypes import DATATYPES, to_datatype, to_numpy_dtype

ALL = sorted(d for d in DATATYPES if d != "BF16")


def sample(datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    if datatype == "BYTES":
        words = np.array([b"", b"caf\xc3\xa9", b"x" * 7, b"\x00\x01"], dtype=object)
        return words[rng.integers(0, len(words), size=shape)]
    dtype = to_numpy_dtype(datatype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def client_body(arrays: dict[str, np.ndarray], binary: bool, outputs=None, **kwargs) -> tuple[bytes, int | None]:
    inputs = []
    for name, array in arrays.items():
        inp = httpclient.InferInput(name, list(array.shape), to_datatype(array.dtype))
        inp.set_data_from_numpy(array, binary_data=binary)
        inputs.append(inp)
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs, **kwargs)
    return body, json_size


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", ALL)
def test_tritonclient_request_decodes_exactly(datatype, binary):
    if datatype == "BYTES" and not binary:
        array = np.array([["a", "é"], ["", "zz"]], dtype=object)  # JSON BYTES are strings
        expected = np.array([[b"a", "é".encode()], [b"", b"zz"]], dtype=object)
    else:
        array = expected = sample(datatype, (3, 2))
    body, json_size = client_body({"t": array}, binary, request_id="r1")
    decoded = decode_infer_request(body, json_size)
    got = decoded.inputs["t"]
    assert decoded.id == "r1"
    assert got.shape == expected.shape
    assert to_datatype(got.dtype) == datatype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", ALL)
def test_our_response_parses_in_tritonclient(datatype, binary):
    array = sample(datatype, (2, 3))
    body, header_length = encode_infer_response("m", "4", "req", {"out": array}, binary_outputs=binary)
    assert (header_length is not None) == binary
    result = httpclient.InferResult.from_response_body(body, header_length=header_length)
    got = result.as_numpy("out")
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("m", "4", "req")
    if datatype == "BYTES" and not binary:
        expected = np.array([b.decode("utf-8", errors="replace") for b in array.ravel()], dtype=object)
        np.testing.assert_array_equal(got.ravel().astype(str), expected.astype(str))
    else:
        np.testing.assert_array_equal(got, array)
        assert got.dtype == array.dtype


def test_output_selection_and_mixed_binary():
    x = sample("FP32", (2, 2))
    outputs = [
        httpclient.InferRequestedOutput("a", binary_data=True),
        httpclient.InferRequestedOutput("b", binary_data=False),
    ]
    body, size = client_body({"x": x}, True, outputs=outputs)
    decoded = decode_infer_request(body, size)
    assert decoded.outputs == ["a", "b"]
    assert decoded.binary_outputs == {"a"}
    arrays = {"a": x, "b": x.astype(np.int64)}
    out, header = encode_infer_response("m", "1", None, arrays, decoded.binary_outputs)
    result = httpclient.InferResult.from_response_body(out, header_length=header)
    np.testing.assert_array_equal(result.as_numpy("a"), x)
    np.testing.assert_array_equal(result.as_numpy("b"), x.astype(np.int64))


def test_request_level_binary_default_and_nested_data():
    body = json.dumps(
        {
            "inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    decoded = decode_infer_request(body)
    assert decoded.binary_outputs is True
    np.testing.assert_array_equal(decoded.inputs["x"], [[1, 2], [3, 4]])
    assert decoded.inputs["x"].dtype == np.int32


def test_zero_row_tensor():
    body, size = client_body({"x": np.zeros((0, 4), np.float32)}, True)
    assert decode_infer_request(body, size).inputs["x"].shape == (0, 4)
