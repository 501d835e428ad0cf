"""Connection, header and body limits, with raw sockets on 127.0.0.1 against a server started with small limits:
a short body is answered 408, slowloris and idle sockets are closed, past the connection cap a new connection is
answered 503 at once, and the server keeps serving throughout (also under a small open-file limit)."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import time

import httpx
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

from driftline.http.connections import connection_cap

pytestmark = pytest.mark.e2e

LIMITS = {
    "DRIFTLINE_HTTP__KEEP_ALIVE_S": "1",
    "DRIFTLINE_HTTP__HEADER_TIMEOUT_S": "1.5",
    "DRIFTLINE_HTTP__BODY_TIMEOUT_S": "1.5",
    "DRIFTLINE_HTTP__MAX_CONNECTIONS": "16",
}
GOOD = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]})


@pytest.fixture(scope="module")
def limited(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("limits")
    srv = start_server(build_test_repository(workdir / "models", iris_weights), workdir, LIMITS)
    yield srv
    srv.stop()


def connect(server, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_closed(sock: socket.socket, limit_s: float = 10) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took (bounded)."""
    start = time.monotonic()
    data = b""
    while time.monotonic() - start < limit_s:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start


def status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def still_serving(server) -> None:
    r = httpx.post(f"{server.url}/v2/models/iris/infer", content=GOOD, timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/v2/models/iris/infer", "/v2/repository/index"])
def test_a_body_shorter_than_its_content_length_gets_408_and_the_connection_closes(limited, path):
    with connect(limited) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n".encode()
            + GOOD[:50].encode()
        )
        raw, took = read_until_closed(sock)
    status, body = status_and_json(raw)
    assert status == 408
    assert "body_timeout_s" in body["error"]
    assert b"connection: close" in raw.lower()
    assert 1.0 < took < 8
    still_serving(limited)


def test_slowloris_headers_get_408_and_the_connection_closes(limited):
    with connect(limited) as sock:
        sock.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\n")
        start = time.monotonic()
        with contextlib.suppress(OSError):  # the server closes mid-trickle
            for _ in range(40):  # one header byte every 0.2 s: never complete
                sock.sendall(b"x")
                time.sleep(0.2)
                if time.monotonic() - start > 4:
                    break
        raw, _ = read_until_closed(sock)
    assert time.monotonic() - start < 10
    status, body = status_and_json(raw)
    assert status == 408
    assert "headers" in body["error"]
    still_serving(limited)


def test_an_idle_connection_is_closed(limited):
    with connect(limited) as sock:
        raw, took = read_until_closed(sock)
    assert raw == b""
    assert 1.0 < took < 8


def test_a_keep_alive_connection_is_closed_after_its_idle_timeout(limited):
    with connect(limited) as sock:
        request = f"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\ncontent-length: {len(GOOD)}\r\n\r\n{GOOD}"
        sock.sendall(request.encode())
        response = b""
        for _ in range(100):  # bounded: headers and body may come in separate segments
            response += sock.recv(65536)
            head, _, body = response.partition(b"\r\n\r\n")
            length = next((int(h[15:]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:")), -1)
            if len(body) == length:
                break
        assert response.startswith(b"HTTP/1.1 200")
        raw, took = read_until_closed(sock)
    assert raw == b""
    assert 0.5 < took < 8


def test_past_the_connection_cap_a_new_connection_gets_503_at_once_and_service_resumes(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    # A header timeout long enough that the idle sockets surely hold the cap while the test looks.
    limited = start_server(root, tmp_path, {**LIMITS, "DRIFTLINE_HTTP__HEADER_TIMEOUT_S": "20"})
    try:
        _past_the_cap(limited)
    finally:
        limited.stop()


def _past_the_cap(limited) -> None:
    idle = [connect(limited) for _ in range(16)]  # the cap, held by idle sockets
    try:
        time.sleep(0.2)
        start = time.monotonic()
        with connect(limited) as extra:
            extra.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
            raw, _ = read_until_closed(extra)
        status, body = status_and_json(raw)
        assert status == 503
        assert "max_connections" in body["error"]
        assert time.monotonic() - start < 3  # answered, not stalled
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{limited.url}/v2/health/live", timeout=2).status_code == 200:
                break
        time.sleep(0.1)
    still_serving(limited)


def test_idle_sockets_past_the_open_file_limit_do_not_stop_service(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # the server inherits it; the default cap stays 1000
    try:
        srv = start_server(root, tmp_path, {"DRIFTLINE_HTTP__HEADER_TIMEOUT_S": "20"})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    idle: list[socket.socket] = []
    try:
        for _ in range(300):  # more than the server has descriptors
            with contextlib.suppress(OSError):
                idle.append(connect(srv, timeout=2))
        time.sleep(1)  # the connections refused during the flood are closed by now
        start = time.monotonic()
        r = httpx.get(f"{srv.url}/v2/health/live", timeout=3)
        assert r.status_code == 503  # an answer at once, where the process used to stop accepting
        assert "max_connections" in r.json()["error"]
        assert time.monotonic() - start < 3
        for sock in idle:
            sock.close()
        idle.clear()
        still_serving(srv)
    finally:
        for sock in idle:
            sock.close()
        srv.stop()


def test_the_connection_cap_leaves_descriptors_for_the_process():
    assert connection_cap(1000, 1024) == 896
    assert connection_cap(100, 1024) == 100
    assert connection_cap(1000, 256) == 224
    assert connection_cap(1000, 16) == 1


def test_granian_gets_the_body_deadline_and_its_header_timeout(tmp_path, iris_weights):
    pytest.importorskip("granian", reason="the granian extra is not installed (pip install -e '.[granian]')")
    root = build_test_repository(tmp_path / "models", iris_weights)
    env = {"DRIFTLINE_HTTP__HEADER_TIMEOUT_S": "1.5", "DRIFTLINE_HTTP__BODY_TIMEOUT_S": "1.5"}
    srv = start_server(root, tmp_path, env, extra_args=["--server", "granian"])
    try:
        with connect(srv) as sock:
            sock.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 200\r\n\r\n{")
            raw, _ = read_until_closed(sock)
        assert status_and_json(raw)[0] == 408
        with connect(srv) as sock:
            sock.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\n")
            _, took = read_until_closed(sock)  # granian closes late headers without an answer
        assert took < 8
        still_serving(srv)
    finally:
        srv.stop()
