"""Shadow answers captured on a real server: under a shadow policy with capture on, the shadow version's answer is
captured with arm "shadow" under the primary request's id and entity, so one label labels both versions' rows
(the labeled export shows the pair), as paired tests of a shadow experiment need."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, IRIS_QUALITY, build_test_repository, write_config, write_server_config

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("shadow_capture")
    config = write_server_config(
        workdir / "server.toml",
        f'[capture]\nenabled = true\ndirectory = "{workdir / "captures"}"\nsegment_seconds = 0.2\n',
    )
    root = build_test_repository(workdir / "models", iris_weights)
    write_config(root / "iris", IRIS_QUALITY)  # versions 1 and 2; 2, the newest, answers unpinned requests
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


def _labeled_rows(url: str, want: int) -> pl.DataFrame:
    """The labeled export once ``want`` rows are in (segments are written every 0.2 s; shadows run behind)."""
    deadline = time.monotonic() + 20
    frame = pl.DataFrame()
    for _ in range(200):
        r = httpx.get(
            f"{url}/v1/models/iris/captures", params={"format": "jsonl", "labeled": "true"}, headers=HEADERS, timeout=10
        )
        assert r.status_code == 200, r.text
        frame = pl.read_ndjson(io.BytesIO(r.content)) if r.content else pl.DataFrame()
        if frame.height >= want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return frame


def test_a_label_labels_the_primary_and_the_shadow_row(server):
    r = httpx.put(
        f"{server.url}/v1/admin/models/iris/routing", json={"shadow": {"target": "1"}}, headers=HEADERS, timeout=30
    )
    assert r.status_code == 200, r.text
    x = np.random.default_rng(3).normal(size=(2, 4)).astype(np.float32)
    inputs = [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": x.ravel().tolist()}]
    given = httpx.post(
        f"{server.url}/v2/models/iris/infer",
        json={"id": "client-7", "inputs": inputs, "parameters": {"entity": "customer-7"}},
        timeout=10,
    )
    generated = httpx.post(f"{server.url}/v2/models/iris/infer", json={"inputs": inputs}, timeout=10)
    assert (given.status_code, generated.status_code) == (200, 200), (given.text, generated.text)
    assert given.json()["model_version"] == "2"
    generated_id = generated.json()["id"]  # the server gave it one: the primary captures
    labels = [{"id": rid, "row": row, "target": row} for rid in ("client-7", generated_id) for row in (0, 1)]
    r = httpx.post(f"{server.url}/v1/models/iris/feedback", json={"feedback": labels}, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text

    frame = _labeled_rows(server.url, 8)
    keyed = {(d["request_id"], d["row"], d["version"]): d for d in frame.to_dicts()}
    assert sorted(keyed) == sorted(
        (rid, row, v) for rid in ("client-7", generated_id) for row in (0, 1) for v in (1, 2)
    )
    for (rid, row, version), d in keyed.items():
        assert d["arm"] == ("shadow" if version == 1 else "default")
        assert d["target"] == row  # one label, both versions' rows
        assert d["entity"] == ("customer-7" if rid == "client-7" else None)
        assert d["latency_us"] > 0
        assert d["in.x"] == pytest.approx(x[row].tolist())
    # Each version's own answer: version 2 has twice version 1's weights, so its scores differ.
    assert keyed[("client-7", 0, 1)]["out.probabilities"] != keyed[("client-7", 0, 2)]["out.probabilities"]
