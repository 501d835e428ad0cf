"""Interop with the real Triton HTTP client: its request bodies decode, and it parses our responses."""

from __future__ import annotations

import numpy as np
import pytest
from tests.protocol.oip_wire import SAMPLES, assert_same

from driftline.protocol.codec import decode_infer_request, encode_infer_response

httpclient = pytest.importorskip("tritonclient.http")


def _client_input(name: str, arr: np.ndarray, datatype: str, binary: bool) -> object:
    inp = httpclient.InferInput(name, list(arr.shape), datatype)
    inp.set_data_from_numpy(arr, binary_data=binary)
    return inp


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_client_request_decodes(datatype: str, binary: bool) -> None:
    arr = SAMPLES[datatype]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        [_client_input("x", arr, datatype, binary)],
        outputs=[httpclient.InferRequestedOutput("y", binary_data=not binary)],
        request_id="req-9",
        parameters={"temperature": 0.5},
    )
    decoded = decode_infer_request(body, json_size)
    assert_same(decoded.inputs["x"], arr)
    assert decoded.id == "req-9"
    assert decoded.parameters == {"temperature": 0.5}
    assert decoded.outputs == ["y"]
    assert decoded.binary_outputs == ({"y"} if not binary else False)
    assert decoded.input_parameters == {"x": {}}


def test_client_request_with_many_inputs_and_zero_rows() -> None:
    tensors = [
        ("f", SAMPLES["FP32"], "FP32", True),
        ("s", SAMPLES["BYTES"], "BYTES", True),
        ("e", np.zeros((0, 4), np.int64), "INT64", True),
        ("eb", np.zeros((0, 2), dtype=object), "BYTES", True),
        ("j", SAMPLES["UINT16"], "UINT16", False),
        ("b", SAMPLES["BOOL"], "BOOL", True),
    ]
    body, json_size = httpclient.InferenceServerClient.generate_request_body([_client_input(*t) for t in tensors])
    decoded = decode_infer_request(body, json_size)
    assert list(decoded.inputs) == [t[0] for t in tensors]
    for name, arr, _, _ in tensors:
        assert_same(decoded.inputs[name], arr)
    # No outputs list: the client asks for every output in binary.
    assert decoded.outputs is None
    assert decoded.binary_outputs is True


def test_client_bf16_request_decodes() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    arr = np.array([[1.5, -2.0, 0.25]], dtype=ml_dtypes.bfloat16)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([_client_input("x", arr, "BF16", True)])
    assert_same(decode_infer_request(body, json_size).inputs["x"], arr)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_client_parses_our_response(datatype: str, binary: bool) -> None:
    arr = SAMPLES[datatype]
    empty = arr[:0]
    body, header_length = encode_infer_response(
        "model", "1", "req-3", {"y": arr, "empty": empty}, binary_outputs=binary
    )
    result = httpclient.InferResult.from_response_body(body, header_length=header_length)
    response = result.get_response()
    assert response["model_name"] == "model"
    assert response["model_version"] == "1"
    assert response["id"] == "req-3"
    for name, want in (("y", arr), ("empty", empty)):
        got = result.as_numpy(name)
        if datatype == "BYTES" and not binary:
            # The client keeps JSON BYTES as str; the UTF-8 bytes are ours.
            got = np.vectorize(lambda s: s.encode(), otypes=[object])(got) if got.size else got.astype(object)
        assert_same(got, want)


def test_client_parses_mixed_response() -> None:
    outs = {"a": SAMPLES["FP16"], "b": SAMPLES["BYTES"], "c": SAMPLES["INT64"]}
    body, header_length = encode_infer_response("m", "1", None, outs, binary_outputs={"b", "c"})
    result = httpclient.InferResult.from_response_body(body, header_length=header_length)
    for name, want in outs.items():
        assert_same(result.as_numpy(name), want)


def test_client_parses_bf16_response() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    arr = np.array([1.5, -2.0, 0.25], dtype=ml_dtypes.bfloat16)
    body, header_length = encode_infer_response("m", "1", None, {"y": arr}, binary_outputs=True)
    result = httpclient.InferResult.from_response_body(body, header_length=header_length)
    assert_same(result.as_numpy("y"), arr)
