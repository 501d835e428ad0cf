"""The inference route under hostile input, against a real server: explicit regressions, then a fuzz test.

The fuzz test generates JSON bodies (valid, mutated, truncated, deeply nested, huge shapes, bad parameters),
Triton binary-extension bodies and raw bytes with a fixed seed, and requires of every answer: no 5xx, an answer
within a few seconds, and server memory (peak RSS) within 200 MB of what it was idle.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.e2e.conftest import Server, start_server
from tests.helpers import build_test_repository, write_config

from driftline.repository.demo import build_mixed_onnx
from driftline.serving.batcher import MAX_TIMEOUT_US

pytestmark = pytest.mark.e2e

ANSWER_WITHIN_S = 5.0
RSS_HEADROOM = 200 << 20
HEADER_LENGTH = "Inference-Header-Content-Length"
# Per model: input name, datatype, shape of one row. `mixed` has two priority levels.
MODELS: dict[str, list[tuple[str, str, list[int]]]] = {
    "iris": [("x", "FP32", [4])],
    "mixed": [("ids", "INT64", [3]), ("mask", "BOOL", [3]), ("tag", "BYTES", [1])],
}
GOOD = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, iris_weights):
    workdir = tmp_path_factory.mktemp("fuzz")
    root = build_test_repository(workdir / "models", iris_weights)
    build_mixed_onnx(root / "mixed" / "1" / "model.onnx")
    write_config(root / "mixed", "max_batch_size = 8\n[batching]\npriority_levels = 2\n")
    srv = start_server(root, workdir, {"DRIFTLINE_HTTP__MAX_REQUEST_BYTES": str(1 << 20)})
    yield srv
    srv.stop()


def post(server: Server, body: bytes | dict[str, Any], path: str = "/v2/models/iris/infer", **headers: str):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}{path}", content=content, headers=headers, timeout=ANSWER_WITHIN_S)


def assert_refused(r: httpx.Response, *needles: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    message = r.json()["error"]
    for needle in needles:
        assert needle in message, message


def with_parameters(**parameters: Any) -> dict[str, Any]:
    return {**GOOD, "parameters": parameters}


def mixed_body(**parameters: Any) -> dict[str, Any]:
    inputs = [
        {"name": "ids", "shape": [1, 3], "datatype": "INT64", "data": [1, 2, 3]},
        {"name": "mask", "shape": [1, 3], "datatype": "BOOL", "data": [True, False, True]},
        {"name": "tag", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]},
    ]
    return {"inputs": inputs, "parameters": parameters}


# -- explicit regressions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 2, 5, 10**20, 1e23, 0.5, 1.0, True, "1", None, [1]])
def test_priority_out_of_range_or_not_an_integer(fuzz_server: Server, value: Any) -> None:
    assert_refused(post(fuzz_server, with_parameters(priority=value)), "parameter 'priority'")


@pytest.mark.parametrize("value", [-1, MAX_TIMEOUT_US + 1, 10**20, 1e300, 0.5, False, "100"])
def test_timeout_out_of_range_or_not_an_integer(fuzz_server: Server, value: Any) -> None:
    assert_refused(post(fuzz_server, with_parameters(timeout=value)), "parameter 'timeout'")


def test_priority_and_timeout_within_bounds_are_served(fuzz_server: Server) -> None:
    for params in ({"priority": 0}, {"priority": 1}, {"timeout": 0}, {"timeout": MAX_TIMEOUT_US}):
        r = post(fuzz_server, with_parameters(**params))
        assert r.status_code == 200, (params, r.text)
    for priority in (1, 2):
        r = post(fuzz_server, mixed_body(priority=priority), "/v2/models/mixed/infer")
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [4]
    assert_refused(post(fuzz_server, mixed_body(priority=3), "/v2/models/mixed/infer"), "within 0..2")


def test_tiny_body_declaring_a_huge_bytes_tensor(fuzz_server: Server) -> None:
    header = json.dumps(
        {"inputs": [{"name": "x", "shape": [300_000_000], "datatype": "BYTES", "parameters": {"binary_data_size": 0}}]}
    ).encode()
    before = _status(fuzz_server.proc.pid)
    start = time.monotonic()
    r = post(fuzz_server, header, **{HEADER_LENGTH: str(len(header))})
    assert_refused(r, "input 'x'", "needs at least 1200000000 bytes")
    assert time.monotonic() - start < ANSWER_WITHIN_S
    assert _status(fuzz_server.proc.pid)["VmHWM"] - before["VmHWM"] < RSS_HEADROOM


@pytest.mark.parametrize(
    ("shape", "needle"),
    [([0, 2**63 - 1], "shape [0, 9223372036854775807]"), ([1] * 65, "65 dimensions")],
)
def test_shapes_numpy_cannot_represent(fuzz_server: Server, shape: list[int], needle: str) -> None:
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": []}]}
    assert_refused(post(fuzz_server, body), "input 'x'", needle)


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": [], "parameters": {"p": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ' + b"[" * 1000 + b"]" * 1000 + b"}]}",
        b'{"zzz": ' + b"[" * 100_000 + b"]" * 100_000 + b', "inputs": []}',
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"BOOL","data":[5,1',
    ],
    ids=["deep-parameters", "deep-data", "deep-unknown-key", "mistyped-and-truncated"],
)
def test_deep_or_broken_json(fuzz_server: Server, body: bytes) -> None:
    assert_refused(post(fuzz_server, body), "malformed JSON")


@pytest.mark.parametrize(
    ("inp", "needles"),
    [
        ({"datatype": "FP32", "data": [1.0, 1e308, 0.0, 0.0]}, ("input 'x'", "out of range for datatype FP32")),
        ({"datatype": "BF16", "data": [1.0, None, 0.0, 0.0]}, ("input 'x'",)),
    ],
)
def test_float_values_the_datatype_cannot_hold(fuzz_server: Server, inp: dict[str, Any], needles: tuple[str]) -> None:
    if inp["datatype"] == "BF16":
        pytest.importorskip("ml_dtypes")
    body = {"inputs": [{**GOOD["inputs"][0], **inp}]}
    assert_refused(post(fuzz_server, body), *needles)


def test_null_is_nan_for_float_inputs(fuzz_server: Server) -> None:
    body = {"inputs": [{**GOOD["inputs"][0], "data": [None, 3.5, 1.4, 0.2]}]}
    r = post(fuzz_server, body)
    assert r.status_code == 200, r.text
    assert None in r.json()["outputs"][0]["data"]  # NaN in, NaN (null) out


def test_bytes_that_are_not_text_are_refused_before_the_batch(fuzz_server: Server) -> None:
    body = mixed_body()
    body["inputs"][2] = {"name": "tag", "shape": [1, 1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}
    header = json.dumps(body).encode()
    r = post(fuzz_server, header + b"\x02\0\0\0\xff\xfe", "/v2/models/mixed/infer", **{HEADER_LENGTH: str(len(header))})
    assert_refused(r, "input 'tag' element 0 is not UTF-8 text")


def _success_count(server: Server) -> int:
    stats = httpx.get(f"{server.url}/v2/models/iris/versions/1/stats", timeout=ANSWER_WITHIN_S).json()
    return int(stats["model_stats"][0]["inference_stats"]["success"]["count"])


def test_a_client_that_leaves_mid_body_is_not_answered_or_run(fuzz_server: Server) -> None:
    body = json.dumps(GOOD).encode()
    before = _success_count(fuzz_server)
    # A whole, valid request in the bytes sent, but Content-Length promises more: the rest never comes.
    head = (
        f"POST /v2/models/iris/versions/1/infer HTTP/1.1\r\nHost: {fuzz_server.hostport}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 100}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=ANSWER_WITHIN_S) as sock:
        sock.sendall(head + body)
        time.sleep(0.2)
    time.sleep(1.0)  # what the server would have run for the partial body, it would have run by now
    assert post(fuzz_server, GOOD, "/v2/models/iris/versions/1/infer").status_code == 200
    assert _success_count(fuzz_server) == before + 1


# -- the fuzz test ---------------------------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 2, -1, 2**31, 2**63 - 1, 2**63, 2**64, 1e308, -1e308, 1e-320, 0.5, 65520.0, 3.4e38])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
)
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
DATATYPES += ["FP16", "FP32", "FP64", "BF16", "BYTES", "FLOAT", ""]
HUGE_SHAPES = [[300_000_000], [0, 2**63 - 1], [1] * 65, [2**31, 2**31], [2**64], [-1, 4], [], [0], [0, 4]]
SHAPES = st.sampled_from(HUGE_SHAPES) | st.lists(st.integers(-2, 2**40), max_size=5) | st.lists(st.integers(0, 9))
PARAMETERS = st.dictionaries(
    st.sampled_from(["priority", "timeout", "binary_data_output", "binary_data_size", "binary_data", "x"]),
    JSON_VALUES | st.integers(-(2**65), 2**65),
    max_size=3,
)


def _element(datatype: str) -> st.SearchStrategy[Any]:
    return {
        "FP32": st.floats(-10, 10, width=32),
        "INT64": st.integers(-1000, 1000),
        "BOOL": st.booleans(),
        "BYTES": st.text(max_size=6) | st.sampled_from(["é", "€€", "😀"]),
    }[datatype]


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A model and a request it accepts: every input with the same random row count."""
    model = draw(st.sampled_from(sorted(MODELS)))
    rows = draw(st.integers(1, 4))
    inputs = []
    for name, datatype, row_shape in MODELS[model]:
        count = rows * int(np.prod(row_shape))
        data = draw(st.lists(_element(datatype), min_size=count, max_size=count))
        inputs.append({"name": name, "shape": [rows, *row_shape], "datatype": datatype, "data": data})
    return model, {"inputs": inputs}


@st.composite
def mutated(draw: st.DrawFn, request: dict[str, Any]) -> dict[str, Any]:
    """The request with a few of its fields replaced by hostile values."""
    body = json.loads(json.dumps(request))
    for _ in range(draw(st.integers(0, 3))):
        inp = draw(st.sampled_from(body["inputs"])) if body["inputs"] else {}
        field = draw(st.sampled_from(["datatype", "shape", "data", "element", "name", "iparams", "params", "outs"]))
        if field == "datatype":
            inp["datatype"] = draw(st.sampled_from(DATATYPES))
        elif field == "shape":
            inp["shape"] = draw(SHAPES)
        elif field == "data":
            inp["data"] = draw(JSON_VALUES)
        elif field == "element" and inp.get("data"):
            inp["data"][draw(st.integers(0, len(inp["data"]) - 1))] = draw(JSON_VALUES)
        elif field == "name":
            inp["name"] = draw(st.sampled_from(["x", "ids", "mask", "tag", "", "nope"]))
        elif field == "iparams":
            inp["parameters"] = draw(PARAMETERS)
        elif field == "params":
            body["parameters"] = draw(PARAMETERS)
        else:
            names = st.sampled_from(["probabilities", "label", "total", "tag_echo", "nope"])
            body["outputs"] = draw(
                st.lists(st.fixed_dictionaries({"name": names}, optional={"parameters": PARAMETERS}))
            )
    return body


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@st.composite
def json_bodies(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    model, request = draw(valid_requests())
    text = json.dumps(draw(mutated(request)))
    if draw(st.integers(0, 9)) == 0:
        # Deep nesting where any value may stand: a parameter, the data, an unknown key.
        levels = draw(st.sampled_from([40, 999, 1000, 5000, 50_000]))
        text = draw(
            st.sampled_from(
                [
                    text.replace('"inputs": ', f'"parameters": {{"p": {_deep(levels)}}}, "inputs": ', 1),
                    text.replace('"data": ', f'"data": {_deep(levels)}, "d": ', 1),
                    text.replace('"inputs": ', f'"zzz": {_deep(levels)}, "inputs": ', 1),
                ]
            )
        )
    body = text.encode()
    if draw(st.integers(0, 4)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    headers = {"content-type": "application/json"}
    encoding = draw(st.sampled_from([None, None, None, "gzip", "deflate", "identity", "br"]))
    if encoding is not None:
        headers["content-encoding"] = encoding
        if encoding == "gzip" and draw(st.booleans()):
            body = gzip.compress(body)
        elif encoding == "deflate" and draw(st.booleans()):
            body = zlib.compress(body)
    return _path(draw, model), headers, body


def _path(draw: st.DrawFn, model: str) -> str:
    version = draw(st.sampled_from(["", "", "/versions/1", "/versions/2", "/versions/champion", "/versions/x"]))
    model = draw(st.sampled_from([model, model, model, "nope"]))
    return f"/v2/models/{model}{version}/infer"


def _binary_tensor(inp: dict[str, Any], raw: bool) -> bytes:
    if inp["datatype"] == "BYTES":
        # raw: the elements' bytes with every other one cut short, so that some are not UTF-8 text.
        items = [s.encode()[: -1 if raw and i % 2 else None] for i, s in enumerate(inp["data"])]
        return b"".join(struct.pack("<I", len(b)) + b for b in items)
    dtype = {"FP32": "<f4", "INT64": "<i8", "BOOL": "?"}[inp["datatype"]]
    return np.array(inp["data"], dtype=dtype).tobytes()


@st.composite
def binary_bodies(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    """Triton's binary extension: some inputs as raw bytes after the JSON header, then hostile edits."""
    model, request = draw(valid_requests())
    blobs = []
    for inp in request["inputs"]:
        if draw(st.booleans()):
            blob = _binary_tensor(inp, draw(st.booleans()))
            if draw(st.integers(0, 5)) == 0:
                blob = draw(st.binary(max_size=64))  # random bytes: lengths, non-UTF-8 text, bool bytes > 1
            del inp["data"]
            inp["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
            if draw(st.integers(0, 9)) == 0:
                # A tiny tensor that declares a huge one: nothing may be allocated for the declared size.
                inp["shape"] = draw(st.sampled_from([[300_000_000], [100_000_000, 3], [2**40]]))
    header = json.dumps(draw(mutated(request))).encode()
    if draw(st.integers(0, 5)) == 0:
        header = header[: draw(st.integers(0, len(header)))]
    payload = b"".join(blobs)
    if draw(st.integers(0, 4)) == 0:
        payload = payload[: draw(st.integers(0, len(payload)))] + draw(st.binary(max_size=16))
    length = draw(st.sampled_from([str(len(header))] * 4 + ["0", "-1", "ten", "99999999", "1e3", str(len(header) + 3)]))
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: length}
    return _path(draw, model), headers, header + payload


@st.composite
def raw_bodies(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    body = draw(st.binary(max_size=256))
    headers = {}
    if draw(st.booleans()):
        headers[HEADER_LENGTH] = str(draw(st.integers(-2, len(body) + 2)))
    return _path(draw, draw(st.sampled_from(sorted(MODELS)))), headers, body


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _idle_rss(pid: int) -> int:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so that the peak is this run's;
    # where that is refused, the peak so far (start-up included) stands for idle.
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return _status(pid)["VmHWM"]
    return _status(pid)["VmRSS"]


def _fuzz(server: Server, bodies: st.SearchStrategy[tuple[str, dict[str, str], bytes]], examples: int) -> None:
    pid = server.proc.pid
    failures: list[str] = []
    with httpx.Client(base_url=server.url, timeout=ANSWER_WITHIN_S) as client:
        assert client.post("/v2/models/iris/infer", json=GOOD).status_code == 200
        idle = _idle_rss(pid)

        @settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(bodies)
        def one(case: tuple[str, dict[str, str], bytes]) -> None:
            path, headers, body = case
            r = client.post(path, content=body, headers=headers)  # a hang is httpx.ReadTimeout: a failure
            # 504 is the documented answer to a request that set a queue timeout and outwaited it.
            expired = r.status_code == 504 and b"timeout" in body
            if r.status_code >= 500 and not expired:
                failures.append(f"{r.status_code} {path} {headers} {body[:300]!r}: {r.text[:300]}")
            assert r.status_code >= 500 or "error" in r.json() or r.status_code == 200

        one()
        peak = _status(pid)["VmHWM"]
        assert client.post("/v2/models/iris/infer", json=GOOD).status_code == 200
    problems = [f"{len(failures)} answers were 5xx, e.g.:", *failures[:5]] if failures else []
    if peak - idle >= RSS_HEADROOM:
        problems.append(f"peak RSS {peak >> 20} MB against {idle >> 20} MB idle")
    assert not problems, "\n".join(problems)


def test_fuzz_json_bodies(fuzz_server: Server) -> None:
    _fuzz(fuzz_server, json_bodies(), 1000)


def test_fuzz_binary_bodies(fuzz_server: Server) -> None:
    _fuzz(fuzz_server, binary_bodies(), 600)


def test_fuzz_raw_bodies(fuzz_server: Server) -> None:
    _fuzz(fuzz_server, raw_bodies(), 200)
