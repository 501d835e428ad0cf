"""Round trips through decode_infer_request and encode_infer_response, JSON and binary, for every datatype."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.protocol.oip_wire import SAMPLES, assert_same, build_request, parse_response

from driftline.protocol.codec import DecodedRequest, decode_infer_request, encode_infer_response


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_request_roundtrip_every_datatype(datatype: str, binary: bool, nested: bool) -> None:
    arr = SAMPLES[datatype]
    body, header_length = build_request([("x", arr, datatype, binary)], nested=nested)
    assert (header_length is not None) == binary
    decoded = decode_infer_request(body, header_length)
    assert_same(decoded.inputs["x"], arr)
    assert decoded.input_parameters == {"x": {}}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_zero_row_tensors(datatype: str, binary: bool) -> None:
    arr = SAMPLES[datatype][:0].reshape(0, 3)
    body, header_length = build_request([("x", arr, datatype, binary)])
    assert_same(decode_infer_request(body, header_length).inputs["x"], arr)
    out, hl = encode_infer_response("m", "1", None, {"y": arr}, binary)
    _, parsed = parse_response(out, hl, {"y": arr.dtype})
    assert_same(parsed["y"], arr)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_response_roundtrip_every_datatype(datatype: str, binary: bool) -> None:
    arr = SAMPLES[datatype]
    body, header_length = encode_infer_response("m", "3", "req-1", {"y": arr}, binary_outputs=binary)
    assert (header_length is not None) == binary
    header, parsed = parse_response(body, header_length, {"y": arr.dtype})
    assert header["model_name"] == "m"
    assert header["model_version"] == "3"
    assert header["id"] == "req-1"
    assert header["outputs"][0]["datatype"] == datatype
    assert_same(parsed["y"], arr)


def test_bf16_roundtrip() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    arr = np.array([[1.5, -2.0], [3.25, 0.0]], dtype=ml_dtypes.bfloat16)
    for binary in (False, True):
        body, header_length = build_request([("x", arr, "BF16", binary)])
        assert_same(decode_infer_request(body, header_length).inputs["x"], arr)
        out, hl = encode_infer_response("m", "1", None, {"y": arr}, binary)
        assert_same(parse_response(out, hl, {"y": arr.dtype})[1]["y"], arr)


def test_mixed_binary_and_json_inputs_in_request_order() -> None:
    a, b, c = SAMPLES["FP32"], SAMPLES["BYTES"], SAMPLES["INT8"]
    body, header_length = build_request(
        [("a", a, "FP32", True), ("b", b, "BYTES", True), ("c", c, "INT8", False)],
        request_id="r7",
        parameters={"priority": 2},
    )
    decoded = decode_infer_request(body, header_length)
    assert list(decoded.inputs) == ["a", "b", "c"]
    assert decoded.id == "r7"
    assert decoded.parameters == {"priority": 2}
    assert decoded.outputs is None
    assert decoded.binary_outputs is False
    for name, want in (("a", a), ("b", b), ("c", c)):
        assert_same(decoded.inputs[name], want)


def test_binary_inputs_are_zero_copy_views_of_the_body() -> None:
    arr = np.arange(8, dtype=np.float64)
    # bytes objects keep their data 8-aligned, so an 8-aligned header leaves the tensor aligned.
    body, header_length = build_request([("x", arr, "FP64", True)], align=8)
    got = decode_infer_request(body, header_length).inputs["x"]
    assert not got.flags.writeable
    assert got.flags.aligned
    assert np.shares_memory(got, np.frombuffer(body, dtype=np.uint8))


def test_misaligned_binary_input_is_copied_to_aligned_memory() -> None:
    arr = np.arange(4, dtype=np.float64)
    body, header_length = build_request(
        [("b", np.array([1], np.uint8), "UINT8", True), ("x", arr, "FP64", True)], align=8
    )
    got = decode_infer_request(body, header_length).inputs["x"]
    assert got.flags.aligned
    assert not np.shares_memory(got, np.frombuffer(body, dtype=np.uint8))
    assert_same(got, arr)


def test_binary_bool_bytes_other_than_one_read_as_true() -> None:
    header = json.dumps(
        {"inputs": [{"name": "x", "shape": [3], "datatype": "BOOL", "parameters": {"binary_data_size": 3}}]}
    ).encode()
    got = decode_infer_request(header + b"\x00\x07\x01", len(header)).inputs["x"]
    assert got.dtype == np.bool_
    assert got.tolist() == [False, True, True]


def test_input_parameters_keep_everything_but_binary_data_size() -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1],
                    "datatype": "INT32",
                    "parameters": {"binary_data_size": 4, "k": 1},
                },
                {
                    "name": "y",
                    "shape": [1],
                    "datatype": "INT32",
                    "data": [5],
                    "parameters": {"content_type": "np"},
                },
            ]
        }
    ).encode()
    decoded = decode_infer_request(header + b"\x01\x00\x00\x00", len(header))
    assert decoded.input_parameters == {"x": {"k": 1}, "y": {"content_type": "np"}}
    assert decoded.inputs["x"].tolist() == [1]


def test_scalar_shape_and_null_as_nan() -> None:
    body = b'{"inputs":[{"name":"s","shape":[],"datatype":"FP32","data":[2.5]},'
    body += b'{"name":"n","shape":[2],"datatype":"FP64","data":[null, 1]}]}'
    decoded = decode_infer_request(body)
    assert decoded.inputs["s"].shape == ()
    assert decoded.inputs["s"].item() == 2.5
    assert np.isnan(decoded.inputs["n"][0])


@pytest.mark.parametrize(
    ("request_params", "outputs", "want_names", "want_binary"),
    [
        ({}, None, None, False),
        ({"binary_data_output": True}, None, None, True),
        ({}, [{"name": "a"}, {"name": "b", "parameters": {"binary_data": True}}], ["a", "b"], {"b"}),
        ({}, [{"name": "a", "parameters": {"binary_data": False}}], ["a"], False),
        ({"binary_data_output": True}, [{"name": "a"}, {"name": "b"}], ["a", "b"], {"a", "b"}),
        (
            {"binary_data_output": True},
            [{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}],
            ["a", "b"],
            {"b"},
        ),
    ],
)
def test_requested_outputs_and_binary_choice(
    request_params: dict, outputs: list | None, want_names: list | None, want_binary: object
) -> None:
    body, header_length = build_request(
        [("x", SAMPLES["FP32"], "FP32", False)], outputs=outputs, parameters=request_params
    )
    decoded = decode_infer_request(body, header_length)
    assert decoded.outputs == want_names
    assert decoded.binary_outputs == want_binary


def test_response_mixes_binary_and_json_outputs_in_order() -> None:
    outs = {"a": SAMPLES["FP32"], "b": SAMPLES["BYTES"], "c": SAMPLES["UINT64"], "d": SAMPLES["BOOL"]}
    body, header_length = encode_infer_response(
        "m", "2", None, outs, binary_outputs={"a", "c"}, parameters={"took_us": 5}
    )
    assert header_length is not None
    header, parsed = parse_response(body, header_length, {k: v.dtype for k, v in outs.items()})
    assert [o["name"] for o in header["outputs"]] == ["a", "b", "c", "d"]
    assert "id" not in header
    assert header["parameters"] == {"took_us": 5}
    assert header["outputs"][0]["parameters"] == {"binary_data_size": SAMPLES["FP32"].nbytes}
    assert "data" not in header["outputs"][0]
    assert "parameters" not in header["outputs"][1]
    for name, want in outs.items():
        assert_same(parsed[name], want)


def test_response_handles_big_endian_non_contiguous_and_str_outputs() -> None:
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    strided = np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]
    text = np.array(["é", "", "abc"])
    for binary in (False, True):
        body, hl = encode_infer_response("m", "1", None, {"b": big, "s": strided, "t": text}, binary)
        _, parsed = parse_response(body, hl, {"b": np.dtype("<f4"), "s": np.dtype(np.int32), "t": np.dtype(object)})
        assert_same(parsed["b"], big.astype("<f4"))
        assert_same(parsed["s"], np.ascontiguousarray(strided))
        assert parsed["t"].tolist() == [b"\xc3\xa9", b"", b"abc"]


def test_json_response_writes_nan_and_inf_as_null() -> None:
    body, hl = encode_infer_response("m", "1", None, {"y": np.array([np.nan, np.inf, 1.0], dtype=np.float32)})
    assert hl is None
    assert json.loads(body)["outputs"][0]["data"] == [None, None, 1.0]
    # ...and our own decoder reads null back as NaN.
    req = b'{"inputs":[{"name":"y","shape":[3],"datatype":"FP32","data":[null,null,1.0]}]}'
    assert np.isnan(decode_infer_request(req).inputs["y"][:2]).all()


def test_empty_model_version_is_omitted() -> None:
    body, _ = encode_infer_response("m", "", None, {"y": np.zeros(1, np.float32)})
    assert "model_version" not in json.loads(body)


def test_decoded_request_is_a_plain_slotted_record() -> None:
    decoded = decode_infer_request(b'{"inputs":[]}')
    assert decoded == DecodedRequest(None, {}, {}, {}, None, False)
    assert not hasattr(decoded, "__dict__")


def test_key_order_does_not_matter() -> None:
    body = b'{"inputs":[{"data":[1,2],"parameters":{},"datatype":"INT16","shape":[2],"name":"x"}],"id":"z"}'
    decoded = decode_infer_request(body)
    assert_same(decoded.inputs["x"], np.array([1, 2], dtype=np.int16))
    assert decoded.id == "z"


def test_flat_and_nested_paths_agree_with_many_inputs() -> None:
    tensors = [(dt, SAMPLES[dt], dt, False) for dt in sorted(SAMPLES)]
    flat = decode_infer_request(build_request(tensors)[0])
    nested = decode_infer_request(build_request(tensors, nested=True)[0])
    for name, want, _, _ in tensors:
        assert_same(flat.inputs[name], want)
        assert_same(nested.inputs[name], want)
