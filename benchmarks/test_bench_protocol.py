"""Open Inference Protocol codecs on the hot path, each group with a plain JSON parse/serialize baseline."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pytest

from driftline.protocol.codec import decode_infer_request, encode_infer_response

RNG = np.random.default_rng(0)


def _request(rows: int, *, binary: bool) -> tuple[bytes, int | None]:
    """A request like a client sends it: one FP32 input of shape [rows, 32], one output asked for."""
    x = RNG.standard_normal((rows, 32)).astype(np.float32)
    inp: dict[str, Any] = {"name": "x", "shape": [rows, 32], "datatype": "FP32"}
    if binary:
        inp["parameters"] = {"binary_data_size": x.nbytes}
    else:
        inp["data"] = x.reshape(-1).tolist()
    out = {"name": "y", "parameters": {"binary_data": binary}}
    header = json.dumps({"id": "42", "inputs": [inp], "outputs": [out]}).encode()
    return (header + x.tobytes(), len(header)) if binary else (header, None)


JSON_1, _ = _request(1, binary=False)
BINARY_1, BINARY_1_LEN = _request(1, binary=True)
Y = {"y": np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)}
Y_DICT = {
    "model_name": "iris",
    "model_version": "1",
    "id": "42",
    "outputs": [{"name": "y", "shape": [1, 4], "datatype": "FP32", "data": Y["y"].reshape(-1).tolist()}],
}


@pytest.mark.benchmark(group="decode-json-fp32x32")
def test_baseline_json_loads(benchmark: Any) -> None:
    assert benchmark(json.loads, JSON_1)["id"] == "42"


@pytest.mark.benchmark(group="decode-json-fp32x32")
def test_baseline_msgspec_decode(benchmark: Any) -> None:
    assert benchmark(msgspec.json.decode, JSON_1)["id"] == "42"


@pytest.mark.benchmark(group="decode-json-fp32x32")
def test_decode_json(benchmark: Any) -> None:
    assert benchmark(decode_infer_request, JSON_1).inputs["x"].shape == (1, 32)


@pytest.mark.benchmark(group="decode-json-fp32x32")
def test_decode_binary(benchmark: Any) -> None:
    assert benchmark(decode_infer_request, BINARY_1, BINARY_1_LEN).inputs["x"].shape == (1, 32)


@pytest.mark.benchmark(group="encode-fp32x4")
def test_baseline_json_dumps(benchmark: Any) -> None:
    assert benchmark(json.dumps, Y_DICT)


@pytest.mark.benchmark(group="encode-fp32x4")
def test_baseline_msgspec_encode(benchmark: Any) -> None:
    assert benchmark(msgspec.json.encode, Y_DICT)


@pytest.mark.benchmark(group="encode-fp32x4")
def test_encode_json(benchmark: Any) -> None:
    body, header_length = benchmark(encode_infer_response, "iris", "1", "42", Y)
    assert header_length is None
    assert body


@pytest.mark.benchmark(group="encode-fp32x4")
def test_encode_binary(benchmark: Any) -> None:
    _, header_length = benchmark(encode_infer_response, "iris", "1", "42", Y, True)
    assert header_length is not None


def _roundtrip(body: bytes, header_length: int | None) -> tuple[bytes, int | None]:
    req = decode_infer_request(body, header_length)
    # Stand-in for the model: 4 outputs per row.
    return encode_infer_response("iris", "1", req.id, Y, req.binary_outputs)


@pytest.mark.benchmark(group="roundtrip-fp32x32-to-fp32x4")
def test_baseline_msgspec_roundtrip(benchmark: Any) -> None:
    def plain() -> bytes:
        msgspec.json.decode(JSON_1)
        return msgspec.json.encode(Y_DICT)

    assert benchmark(plain)


@pytest.mark.benchmark(group="roundtrip-fp32x32-to-fp32x4")
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_roundtrip(benchmark: Any, binary: bool) -> None:
    body, header_length = (BINARY_1, BINARY_1_LEN) if binary else (JSON_1, None)
    _, out_header_length = benchmark(_roundtrip, body, header_length)
    assert (out_header_length is not None) == binary


@pytest.mark.benchmark(group="decode-batch-fp32")
@pytest.mark.parametrize("rows", [64, pytest.param(1024, marks=pytest.mark.slow)])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_decode_batch(benchmark: Any, rows: int, binary: bool) -> None:
    body, header_length = _request(rows, binary=binary)
    assert benchmark(decode_infer_request, body, header_length).inputs["x"].shape == (rows, 32)


@pytest.mark.benchmark(group="decode-batch-fp32")
@pytest.mark.parametrize("rows", [64, pytest.param(1024, marks=pytest.mark.slow)])
def test_baseline_msgspec_decode_batch(benchmark: Any, rows: int) -> None:
    body, _ = _request(rows, binary=False)
    assert benchmark(msgspec.json.decode, body)["id"] == "42"
