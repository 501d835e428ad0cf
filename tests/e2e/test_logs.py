"""JSON logs and request ids on a real server: every line parses, access lines are found by request id, the
inference route is sampled at its share, and no API key of the run ever reaches the log."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import time
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Server, start_server
from tests.helpers import build_test_repository

from driftline.security.keys import hash_key

pytestmark = pytest.mark.e2e

KEYS = {role: f"dl_logtest_{role}_{os.urandom(8).hex()}" for role in ("predictor", "admin")}
ROW = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
SHARE = 0.2
SUCCESSES = 400


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, iris_weights: Any):
    tmp = tmp_path_factory.mktemp("logs")
    root = build_test_repository(tmp / "models", iris_weights)
    config = tmp / "server.toml"
    lines = ["[logs]", f"access_sample = {SHARE}", "sample_seed = 7", "[auth]", "require_for_inference = true"]
    for role, key in KEYS.items():
        lines += ["[[auth.keys]]", f'name = "{role}"', f'role = "{role}"', f'sha256 = "{hash_key(key)}"']
    config.write_text("\n".join(lines) + "\n")
    srv = start_server(root, tmp, extra_args=["--config", str(config), "--log-format", "json"])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=10, headers={"authorization": f"Bearer {KEYS['predictor']}"}) as c:
        yield c


def log_lines(server: Server) -> list[dict[str, Any]]:
    """Every line of the server's log, each parsed as one JSON object (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]


def lines_of(server: Server, request_id: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    """The log lines of one request, waiting for ``count`` of them (a line is written just after its answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in log_lines(server) if d.get("request_id") == request_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_every_line_is_json_with_the_base_fields(server: Server, client: httpx.Client) -> None:
    assert client.get(f"{server.url}/v2/health/ready").status_code == 200
    lines = log_lines(server)
    assert any(d["logger"].startswith("uvicorn") for d in lines)  # uvicorn's own lines go through it too
    for d in lines:
        assert {"ts", "level", "logger", "message"} <= d.keys()
        assert d["ts"].endswith("Z")


def test_an_error_with_x_request_id_is_logged_under_it(server: Server, client: httpx.Client) -> None:
    bad = {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [1.0] * 5}]}
    r = client.post(f"{server.url}/v2/models/iris/infer", json=bad, headers={"x-request-id": "err-header-1"})
    assert r.status_code == 400
    assert r.headers["x-request-id"] == "err-header-1"
    (line,) = lines_of(server, "err-header-1")
    assert line["logger"] == "driftline.access"
    assert line["level"] == "WARNING"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v2/models/iris/infer", 400)
    assert line["model"] == "iris"
    assert line["version"] is None  # no version answered
    assert line["latency_ms"] > 0


def test_without_the_header_the_body_id_is_the_request_id(server: Server, client: httpx.Client) -> None:
    bad = {"id": "body-id-1", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1.0] * 4}]}
    r = client.post(f"{server.url}/v2/models/iris/infer", json=bad)
    assert r.status_code == 400
    assert r.headers["x-request-id"] == "body-id-1"
    (line,) = lines_of(server, "body-id-1")
    assert line["status"] == 400


def test_an_unknown_model_and_an_invalid_header_get_a_generated_id(server: Server, client: httpx.Client) -> None:
    r = client.post(f"{server.url}/v2/models/nope/infer", json=ROW, headers={"x-request-id": "has a space"})
    assert r.status_code == 404
    generated = r.headers["x-request-id"]
    assert generated != "has a space"
    assert len(generated) == 22
    (line,) = lines_of(server, generated)
    assert (line["status"], line["model"], line["version"]) == (404, "nope", None)


def test_an_unauthenticated_request_is_logged(server: Server) -> None:
    with httpx.Client(timeout=10) as anonymous:
        r = anonymous.post(f"{server.url}/v2/models/iris/infer", json=ROW, headers={"x-request-id": "no-key-1"})
    assert r.status_code == 401
    assert r.headers["x-request-id"] == "no-key-1"
    assert lines_of(server, "no-key-1")[0]["status"] == 401


def test_other_routes_echo_the_id_and_are_logged(server: Server, client: httpx.Client) -> None:
    r = client.get(f"{server.url}/v2/models/iris", headers={"x-request-id": "meta-1"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "meta-1"
    (line,) = lines_of(server, "meta-1")
    assert (line["method"], line["path"], line["status"], line["level"]) == ("GET", "/v2/models/iris", 200, "INFO")
    missing = client.get(f"{server.url}/v2/no/such/route")
    assert missing.status_code == 404
    assert lines_of(server, missing.headers["x-request-id"])[0]["status"] == 404
    head = client.head(f"{server.url}/v2/health/live")
    assert head.status_code == 200
    assert "x-request-id" in head.headers


def test_successes_are_sampled_at_the_share(server: Server, client: httpx.Client) -> None:
    url = f"{server.url}/v2/models/iris/infer"
    ids = [f"ok-{i}" for i in range(SUCCESSES)]
    for request_id in ids:
        r = client.post(url, json=ROW, headers={"x-request-id": request_id})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == request_id
    time.sleep(0.5)  # the last line is written just after its answer
    wanted = set(ids)
    found = [d for d in log_lines(server) if d.get("request_id") in wanted]
    bound = 4.5 * math.sqrt(SUCCESSES * SHARE * (1 - SHARE))
    assert abs(len(found) - SUCCESSES * SHARE) <= bound, len(found)
    for line in found:
        assert (line["status"], line["model"], line["version"], line["rows"]) == (200, "iris", 2, 1)
        assert line["latency_ms"] > 0
    # the protocol's own id is untouched: echoed in the body when sent, and only then
    r = client.post(url, json={**ROW, "id": "oip-1"}, headers={"x-request-id": "hdr-2"})
    assert r.json()["id"] == "oip-1"
    assert r.headers["x-request-id"] == "hdr-2"


def test_no_api_key_of_the_run_is_in_the_log(server: Server, client: httpx.Client) -> None:
    with httpx.Client(timeout=10) as other:
        wrong = f"dl_logtest_wrong_{os.urandom(8).hex()}"
        assert (
            other.post(
                f"{server.url}/v2/models/iris/infer", json=ROW, headers={"authorization": f"Bearer {wrong}"}
            ).status_code
            == 401
        )
        admin = other.get(f"{server.url}/v1/admin/keys", headers={"authorization": f"Bearer {KEYS['admin']}"})
        assert admin.status_code < 500
    time.sleep(0.3)
    text = server.log.read_text()
    assert "driftline.access" in text
    for key in [*KEYS.values(), wrong]:
        assert key not in text


def test_worker_processes_log_json_too(tmp_path: Any, iris_weights: Any) -> None:
    root = build_test_repository(tmp_path / "models", iris_weights)
    srv = start_server(root, tmp_path, {"DRIFTLINE_LOGS__FORMAT": "json"}, extra_args=["--workers", "2"])
    try:
        with httpx.Client(timeout=10) as c:
            assert c.get(f"{srv.url}/v2/models/iris", headers={"x-request-id": "workers-1"}).status_code == 200
        assert lines_of(srv, "workers-1")[0]["status"] == 200
        # uvicorn's supervisor and both workers, each line JSON (the second worker may still be starting)
        deadline = time.monotonic() + 30
        while len({d["pid"] for d in log_lines(srv)}) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len({d["pid"] for d in log_lines(srv)}) >= 3
    finally:
        srv.stop()


@pytest.mark.filterwarnings("ignore::litestar.exceptions.LitestarDeprecationWarning")
def test_a_500_traceback_carries_the_request_id(tmp_path: Any, iris_weights: Any, monkeypatch: pytest.MonkeyPatch):
    """In process (a fault has to be injected to get a 500): the traceback line names the id the answer echoed,
    on the fast path and on a Litestar route."""
    from litestar.testing import TestClient

    from driftline.config import ServerSettings
    from driftline.http.app import create_server_app
    from driftline.logs.format import JsonFormatter
    from driftline.serving.dataplane import DataPlane
    from driftline.serving.table import ModelTable

    def broken(*_: object, **__: object) -> Any:
        raise RuntimeError("injected")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # formats in the request's task, as the server's handler does
    logger = logging.getLogger("driftline.http")
    logger.addHandler(handler)
    root = build_test_repository(tmp_path / "models", iris_weights)
    settings = ServerSettings(repository=str(root), database=str(tmp_path / "driftline.db"))
    try:
        with TestClient(create_server_app(settings)) as client:  # type: ignore[arg-type]
            monkeypatch.setattr(DataPlane, "infer", broken)
            monkeypatch.setattr(ModelTable, "loaded", broken)
            fast = client.post("/v2/models/iris/infer", json=ROW, headers={"x-request-id": "boom-fast"})
            routed = client.get("/v2/health/ready")
    finally:
        logger.removeHandler(handler)
    assert (fast.status_code, routed.status_code) == (500, 500)
    assert fast.headers["x-request-id"] == "boom-fast"
    lines = {d["request_id"]: d for d in map(json.loads, stream.getvalue().splitlines())}
    assert "RuntimeError: injected" in lines["boom-fast"]["exc"]
    assert "RuntimeError: injected" in lines[routed.headers["x-request-id"]]["exc"]
