"""Bad input gets a clear 4xx/5xx naming the problem, and the server keeps answering correctly afterwards."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.e2e

GOOD = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def post(server, path: str, body: bytes | dict, headers: dict | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}{path}", content=content, headers=headers or {}, timeout=30)


def assert_still_healthy(server) -> None:
    r = post(server, "/v2/models/iris/infer", GOOD)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][1]["data"] in ([0], [1], [2])
    stats = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'driftline_queue_depth{model="iris",version="2"} 0.0' in stats


def with_input(**changes) -> dict:
    inp = {**GOOD["inputs"][0], **changes}
    return {"inputs": [inp]}


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v2/models/nope/infer", GOOD, 404, "nope"),
        ("/v2/models/iris/versions/9/infer", GOOD, 404, "'9'"),
        ("/v2/models/iris/infer", with_input(name="features"), 400, "features"),
        ("/v2/models/iris/infer", with_input(datatype="FP64"), 400, "FP32"),
        ("/v2/models/iris/infer", with_input(shape=[1, 5], data=[1.0] * 5), 400, "[-1, 4]"),
        ("/v2/models/iris/infer", with_input(shape=[2, 4]), 400, "8"),
        ("/v2/models/iris/infer", with_input(datatype="FLOAT32"), 400, "FLOAT32"),
        ("/v2/models/iris/infer", with_input(data=["a", "b", "c", "d"]), 400, "x"),
        ("/v2/models/iris/infer", {"inputs": []}, 400, "x"),
        ("/v2/models/iris/infer", {"not_inputs": 1}, 400, "inputs"),
        ("/v2/models/iris/infer", b'{"inputs": [', 400, "JSON"),
        ("/v2/models/iris/infer", with_input(shape=[17, 4], data=[1.0] * 68), 400, "max_batch_size"),
        ("/v2/models/iris/infer", {**GOOD, "outputs": [{"name": "nope"}]}, 400, "nope"),
    ],
)
def test_bad_requests(server, path, body, status, needle):
    r = post(server, path, body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert_still_healthy(server)


def test_binary_header_that_does_not_match_the_body(server):
    header = json.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}
    ).encode()
    raw = np.ones(4, np.float32).tobytes()
    ok = post(server, "/v2/models/iris/infer", header + raw, {"Inference-Header-Content-Length": str(len(header))})
    assert ok.status_code == 200, ok.text
    short = post(
        server,
        "/v2/models/iris/infer",
        header + raw[:10],
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert short.status_code == 400
    assert "x" in short.json()["error"]
    too_long = post(server, "/v2/models/iris/infer", header + raw, {"Inference-Header-Content-Length": "999999"})
    assert too_long.status_code == 400
    garbage = post(server, "/v2/models/iris/infer", header + raw, {"Inference-Header-Content-Length": "ten"})
    assert garbage.status_code == 400
    assert_still_healthy(server)


def test_body_over_the_limit_is_413(server):
    big = b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [' + b"1.0," * 400_000 + b"1.0]}]}"
    r = post(server, "/v2/models/iris/infer", big)
    assert r.status_code == 413
    assert "error" in r.json()
    assert_still_healthy(server)


def test_full_queue_answers_503_at_once_and_loses_nothing(server):
    x = np.random.default_rng(0).normal(size=(64, 256)).astype(np.float32)
    body = {"inputs": [{"name": "x", "shape": [64, 256], "datatype": "FP32", "data": x.ravel().tolist()}]}
    payload = json.dumps(body).encode()
    with ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(lambda _: post(server, "/v2/models/heavy/infer", payload), range(24)))
    statuses = [r.status_code for r in codes]
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses
    assert 503 in statuses
    assert all("queue is full" in r.json()["error"] for r in codes if r.status_code == 503)
    q = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'driftline_queue_depth{model="heavy",version="1"} 0.0' in q
    assert_still_healthy(server)


def test_queue_timeout_gives_504_never_a_late_answer(server):
    x = np.random.default_rng(1).normal(size=(64, 256)).astype(np.float32)
    slow = {"inputs": [{"name": "x", "shape": [64, 256], "datatype": "FP32", "data": x.ravel().tolist()}]}
    quick = {**slow, "parameters": {"timeout": 1}}
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(post, server, "/v2/models/heavy/infer", slow)
        rest = [pool.submit(post, server, "/v2/models/heavy/infer", quick) for _ in range(2)]
        results = [f.result() for f in rest]
        assert first.result().status_code in (200, 503)
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {503, 504}, codes
    assert 504 in codes, codes
    for r in results:
        if r.status_code == 504:
            assert "timed out" in r.json()["error"]
    assert_still_healthy(server)


def test_unknown_routes_and_methods_use_the_error_shape(server):
    r = httpx.get(f"{server.url}/v2/models/iris/infer", timeout=10)
    assert r.status_code == 405
    assert "error" in r.json()
    r = httpx.get(f"{server.url}/v2/nothing/here", timeout=10)
    assert r.status_code == 404
    assert "error" in r.json()
