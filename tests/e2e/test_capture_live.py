"""Prediction capture on a real server: captured rows exported as JSON lines and Parquet equal the requests and
their answers, sampling by request id, no change for a model that does not capture, erasure of one entity (audited),
bad query parameters, the CLI export, and a capture directory that cannot be written (serving goes on)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_test_repository, write_server_config

from driftline.capture.sampling import should_capture

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
CAPTURE = "[capture]\nenabled = true\n"


def _repository(root, iris_weights):
    root = build_test_repository(root, iris_weights)
    config = (root / "iris" / "config.toml").read_text()
    # iris_half: iris's version 1 captured at half the requests; mlp keeps capture off (the server default).
    shutil.copytree(root / "iris" / "1", root / "iris_half" / "1")
    (root / "iris_half" / "config.toml").write_text(f"{config}\n[capture]\nenabled = true\nsample_rate = 0.5\n")
    quality = '[quality]\ntask = "classification"\nlabel_output = "label"\n'  # so its feedback can be posted
    (root / "iris" / "config.toml").write_text(f"{config}\n{CAPTURE}\n{quality}")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("capture")
    config = write_server_config(
        workdir / "server.toml", f'[capture]\ndirectory = "{workdir / "captures"}"\nsegment_seconds = 0.2\n'
    )
    srv = start_server(_repository(workdir / "models", iris_weights), workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


def _body(x: np.ndarray, request_id: str | None = None, entity: object = None) -> dict:
    body: dict = {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    if request_id is not None:
        body["id"] = request_id
    if entity is not None:
        body["parameters"] = {"entity": entity}
    return body


def _infer(url: str, path: str, body: dict) -> dict:
    r = httpx.post(f"{url}{path}", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _export(url: str, model: str, fmt: str = "jsonl", **query: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/models/{model}/captures", params={"format": fmt, **query}, headers=HEADERS, timeout=10)


def _rows(url: str, model: str, want: int, **query: str) -> pl.DataFrame:
    """The model's exported rows once ``want`` of them are written (segments are written every 0.2 s)."""
    deadline = time.monotonic() + 20
    frame = pl.DataFrame()
    for _ in range(200):
        r = _export(url, model, **query)
        assert r.status_code == 200, r.text
        frame = pl.read_ndjson(io.BytesIO(r.content)) if r.content else pl.DataFrame()
        if frame.height >= want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return frame


def test_exports_equal_the_requests_and_answers(server):
    rng = np.random.default_rng(5)
    sent: dict[str, tuple[np.ndarray, dict, str]] = {}
    for i in range(12):
        x = rng.normal(size=(1 + i % 3, 4)).astype(np.float32)
        request_id = f"req-{i}" if i % 2 else None
        path = "/v2/models/iris/versions/1/infer" if i % 4 < 2 else "/v2/models/iris/infer"
        answer = _infer(server.url, path, _body(x, request_id))
        # A request without an id is given one (so feedback can name it); one with an id keeps it.
        assert answer["id"] == request_id if request_id else len(answer["id"]) == 32
        sent[answer["id"]] = (x, answer, "pinned" if i % 4 < 2 else "default")
    want = sum(len(x) for x, _, _ in sent.values())
    frame = _rows(server.url, "iris", want)
    assert frame.height == want
    for request_id, (x, answer, arm) in sent.items():
        rows = frame.filter(pl.col("request_id") == request_id).sort("row")
        assert rows["row"].to_list() == list(range(len(x)))
        assert rows["arm"].unique().to_list() == [arm]
        assert rows["model"].unique().to_list() == ["iris"]
        np.testing.assert_array_equal(np.array(rows["in.x"].to_list(), dtype=np.float32), x)
        by_name = {o["name"]: o for o in answer["outputs"]}
        probs = np.array(by_name["probabilities"]["data"], dtype=np.float32).reshape(len(x), -1)
        np.testing.assert_array_equal(np.array(rows["out.probabilities"].to_list(), dtype=np.float32), probs)
        assert rows["out.label"].to_list() == by_name["label"]["data"]
    parquet = _export(server.url, "iris", "parquet")
    assert parquet.status_code == 200
    assert parquet.headers["content-type"].startswith("application/vnd.apache.parquet")
    columns = ["request_id", "row", "version", "arm", "entity", "in.x", "out.probabilities", "out.label"]
    table = pl.read_parquet(io.BytesIO(parquet.content)).select(columns).sort("request_id", "row")
    # JSON lines read back as float64: the same float32 values, compared as float32.
    for column in ("request_id", "row", "version", "arm", "entity", "out.label"):
        assert table[column].to_list() == frame.sort("request_id", "row")[column].to_list(), column
    for column in ("in.x", "out.probabilities"):
        np.testing.assert_array_equal(
            np.array(table[column].to_list(), np.float32),
            np.array(frame.sort("request_id", "row")[column].to_list(), np.float32),
        )
    # One version (the pinned requests went to 1, the others to the newest, 2); a window before any row: none.
    pinned = sum(len(x) for x, _, arm in sent.values() if arm == "pinned")
    assert _export(server.url, "iris", version="1").content.count(b"\n") == pinned
    assert _export(server.url, "iris", until="2000-01-01T00:00:00Z").content == b""


def test_sampling_by_request_id(server):
    ids = [f"half-{i}" for i in range(200)]
    x = np.zeros((1, 4), np.float32)
    for request_id in ids:
        _infer(server.url, "/v2/models/iris_half/infer", _body(x, request_id))
    want = sum(should_capture(i, 0.5) for i in ids)
    assert 70 < want < 130  # the hash splits about half
    frame = _rows(server.url, "iris_half", want)
    assert sorted(frame["request_id"].to_list()) == sorted(i for i in ids if should_capture(i, 0.5))


def test_a_model_that_does_not_capture_answers_as_before(server):
    x = np.zeros((2, 32), np.float32)
    r = httpx.post(f"{server.url}/v2/models/mlp/infer", json=_body(x), timeout=10)
    assert r.status_code == 200
    assert set(r.json()) == {"model_name", "model_version", "outputs"}  # no id added
    assert _export(server.url, "mlp").content == b""
    # A non-string entity is only looked at where capture is on.
    assert httpx.post(f"{server.url}/v2/models/mlp/infer", json=_body(x, entity=5), timeout=10).status_code == 200


def test_bad_query_parameters_and_entity_are_named(server):
    for query, word in (
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"version": "one"}, "version"),
        ({"format": "csv"}, "format"),
    ):
        r = httpx.get(f"{server.url}/v1/models/iris/captures", params=query, headers=HEADERS, timeout=10)
        assert r.status_code == 400, (query, r.text)
        assert word in r.json()["error"]
    assert _export(server.url, "nope").status_code == 404
    r = httpx.post(f"{server.url}/v2/models/iris/infer", json=_body(np.zeros((1, 4), np.float32), entity=7))
    assert r.status_code == 400
    assert "parameters.entity" in r.json()["error"]


def test_erasure_removes_exactly_the_entity_and_is_audited(server):
    x = np.ones((2, 4), np.float32)
    for i in range(6):
        _infer(server.url, "/v2/models/iris/infer", _body(x, f"erase-{i}", "alice" if i % 2 else "bob"))
    before = _rows(server.url, "iris", 1)
    deadline = time.monotonic() + 20
    while before.filter(pl.col("request_id").str.starts_with("erase-")).height < 12 and time.monotonic() < deadline:
        time.sleep(0.1)
        before = _rows(server.url, "iris", 1)
    # Labels: one of alice's requests by id, alice by entity, one of bob's requests: erasure takes alice's two.
    labels = [
        {"id": "erase-1", "row": 0, "target": 1},
        {"entity": "alice", "target": 2},
        {"id": "erase-0", "target": 0},
    ]
    r = httpx.post(f"{server.url}/v1/models/iris/feedback", json={"feedback": labels}, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    assert httpx.delete(f"{server.url}/v1/captures", params={"entity": "alice"}, timeout=10).status_code == 401
    r = httpx.delete(f"{server.url}/v1/captures", params={"entity": "alice"}, headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"entity": "alice", "captured_rows": 6, "labels": 2, "kpi_events": 0}
    again = httpx.delete(f"{server.url}/v1/captures", params={"entity": "bob"}, headers=HEADERS, timeout=30)
    # bob's label was left until now
    assert again.json() == {"entity": "bob", "captured_rows": 6, "labels": 1, "kpi_events": 0}
    after = _rows(server.url, "iris", 0)
    assert after.filter(pl.col("entity").is_in(["alice", "bob"])).height == 0
    assert after.height == before.height - 12
    events = httpx.get(
        f"{server.url}/v1/admin/audit", params={"action": "capture_erased"}, headers=HEADERS, timeout=10
    ).json()
    assert len(events) == 2
    assert events[0]["actor"] == "key:admin"
    assert "alice" not in json.dumps(events)  # named by its sha256 only


def test_cli_export_and_metrics(server, tmp_path):
    want = _rows(server.url, "iris", 1).height
    out = tmp_path / "iris.parquet"
    env = {**os.environ, "DRIFTLINE_URL": server.url, "DRIFTLINE_API_KEY": ADMIN_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "capture", "export", "iris", "--version", "1", "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pinned = pl.read_parquet(out)
    assert 0 < pinned.height <= want
    assert pinned["version"].unique().to_list() == [1]
    refused = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "capture", "export", "iris", "--since", "nope", "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("driftline: error: ")
    assert "since" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert "driftline_capture_up 1.0" in metrics
    assert "driftline_capture_rows_total" in metrics
    assert "driftline_capture_dropped_total 0.0" in metrics


def test_an_unwritable_capture_directory_stops_capture_not_serving(tmp_path, iris_weights):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the capture directory's parent should be\n")
    config = write_server_config(
        tmp_path / "server.toml", f'[capture]\ndirectory = "{blocker / "captures"}"\nsegment_seconds = 0.2\n'
    )
    srv = start_server(_repository(tmp_path / "models", iris_weights), tmp_path, {"DRIFTLINE_CONFIG": str(config)})
    try:
        x = np.zeros((1, 4), np.float32)
        deadline = time.monotonic() + 20
        status: dict = {}
        for i in range(200):
            _infer(srv.url, "/v2/models/iris/infer", _body(x, f"ro-{i}"))  # serving goes on
            status = httpx.get(f"{srv.url}/v1/captures/status", headers=HEADERS, timeout=10).json()
            if not status["up"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status["up"] is False
        assert str(blocker) in status["failed"]
        assert "driftline_capture_up 0.0" in httpx.get(f"{srv.url}/metrics", timeout=10).text
        _infer(srv.url, "/v2/models/iris/infer", _body(x))
    finally:
        srv.stop()


def test_the_arm_says_how_the_request_reached_its_version(server):
    admin = f"{server.url}/v1/admin/models/iris"
    assert httpx.put(f"{admin}/aliases/blue", json={"version": 1}, headers=HEADERS, timeout=10).status_code == 200
    x = np.zeros((1, 4), np.float32)
    _infer(server.url, "/v2/models/iris/versions/blue/infer", _body(x, "arm-alias"))
    r = httpx.put(f"{admin}/routing", json={"canary": {"target": "1", "percent": 100}}, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    try:
        _infer(server.url, "/v2/models/iris/infer", _body(x, "arm-canary"))
    finally:
        assert httpx.delete(f"{admin}/routing", headers=HEADERS, timeout=10).status_code == 200
    deadline = time.monotonic() + 20
    arms: dict[str, str] = {}
    while len(arms) < 2 and time.monotonic() < deadline:
        frame = _rows(server.url, "iris", 1)
        arms = dict(frame.filter(pl.col("request_id").str.starts_with("arm-")).select("request_id", "arm").iter_rows())
        time.sleep(0.1)
    assert arms == {"arm-alias": "alias", "arm-canary": "canary"}
