"""A response is never held back by Nagle's algorithm.

uvicorn opens a listener handed over by ``fd=`` as a Unix socket, so TCP_NODELAY was never set on accepted
connections: a response's second write (uvicorn sends headers and body separately) then waited for the client's
delayed ACK, 40 ms on Linux, and a client sending one request at a time got 23 requests/s. This is a stall, not a
speed target: the bound is ten times below the stall and far above a healthy answer even on a loaded machine.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time

import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

pytestmark = pytest.mark.e2e

BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
).encode()


def test_sequential_requests_on_one_connection_are_not_delayed(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    srv = start_server(root, tmp_path)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        took = []
        for _ in range(40):
            start = time.perf_counter()
            conn.request("POST", "/v2/models/iris/infer", BODY, {"content-type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            took.append(time.perf_counter() - start)
        conn.close()
        assert statistics.median(took) < 0.02, f"median {statistics.median(took) * 1000:.1f} ms per request"
    finally:
        srv.stop()
