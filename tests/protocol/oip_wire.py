"""Hand-rolled Open Inference Protocol bodies and checks, written independently of the codecs under test."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

# datatype -> a small sample holding the edge values of the type.
SAMPLES: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535], [7, 8, 9]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1], [7, 8, 9]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1], [7, 8, 9]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127], [1, -1, 2]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 0, 2**15 - 1], [1, -1, 2]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1], [1, -1, 2]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1], [1, -1, 2]], dtype=np.int64),
    "FP16": np.array([[0.5, -0.0, 65504.0], [1e-3, -2.25, 3.0]], dtype=np.float16),
    "FP32": np.array([[0.1, -0.0, 3.4e38], [1e-30, -2.5, 3.0]], dtype=np.float32),
    "FP64": np.array([[0.1, -0.0, 1.7e308], [5e-324, -2.5, 1 / 3]], dtype=np.float64),
    "BYTES": np.array([["héllo".encode(), b"", "日本".encode()], [b"a", b"\x00b", b"zz"]], dtype=object),
}


def json_data(arr: np.ndarray, datatype: str, *, nested: bool = False) -> list[Any]:
    """The JSON ``data`` of an array, flat or nested."""
    if datatype == "BYTES":
        arr = np.vectorize(lambda b: b.decode(), otypes=[object])(arr) if arr.size else arr
    elif datatype == "BF16":
        arr = arr.astype(np.float32)
    return arr.tolist() if nested and arr.ndim else arr.reshape(-1).tolist()


def binary_data(arr: np.ndarray, datatype: str) -> bytes:
    """The binary-extension bytes of an array."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(b)) + b for b in arr.reshape(-1).tolist())
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def build_request(
    tensors: list[tuple[str, np.ndarray, str, bool]],
    *,
    outputs: list[dict[str, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
    request_id: str | None = None,
    nested: bool = False,
    align: int = 1,
) -> tuple[bytes, int | None]:
    """Build a request body from (name, array, datatype, binary) tuples; pad the JSON to ``align`` bytes."""
    inputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, arr, datatype, binary in tensors:
        entry: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
        if binary:
            blob = binary_data(arr, datatype)
            blobs.append(blob)
            entry["parameters"] = {"binary_data_size": len(blob)}
        else:
            entry["data"] = json_data(arr, datatype, nested=nested)
        inputs.append(entry)
    req: dict[str, Any] = {"inputs": inputs}
    if request_id is not None:
        req["id"] = request_id
    if parameters is not None:
        req["parameters"] = parameters
    if outputs is not None:
        req["outputs"] = outputs
    header = json.dumps(req).encode()
    header += b" " * (-len(header) % align)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def parse_response(body: bytes, header_length: int | None, dtypes: dict[str, np.dtype]) -> tuple[dict, dict]:
    """Parse a response body into (header JSON, name -> array)."""
    end = len(body) if header_length is None else header_length
    header = json.loads(body[:end])
    out: dict[str, np.ndarray] = {}
    pos = end
    for o in header["outputs"]:
        dtype = dtypes[o["name"]]
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None:
            data = o["data"]
            if o["datatype"] == "BYTES":
                data = [s.encode() for s in data]
            arr = np.empty(len(data), dtype=object) if o["datatype"] == "BYTES" else None
            if arr is not None:
                arr[:] = data
            else:
                arr = np.array(data, dtype=dtype)
        else:
            raw = body[pos : pos + size]
            pos += size
            if o["datatype"] == "BYTES":
                items, i = [], 0
                while i < len(raw):
                    (n,) = struct.unpack_from("<I", raw, i)
                    items.append(raw[i + 4 : i + 4 + n])
                    i += 4 + n
                arr = np.empty(len(items), dtype=object)
                arr[:] = items
            else:
                arr = np.frombuffer(raw, dtype=dtype)
        out[o["name"]] = arr.reshape(o["shape"])
    assert pos == len(body)
    return header, out


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    """Same dtype, shape and values (NaN equal to NaN for floats)."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind == "f":
        assert np.array_equal(got, want, equal_nan=True)
    elif want.dtype.kind == "O":
        assert got.tolist() == want.tolist()
    elif want.dtype.kind == "V":  # bfloat16: compare the bits
        assert np.array_equal(got.view(np.uint16), want.view(np.uint16))
    else:
        assert np.array_equal(got, want)
