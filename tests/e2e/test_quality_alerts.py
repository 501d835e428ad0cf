"""Quality alerts on a real server: labels that make accuracy fall below a rule's threshold fire exactly one webhook
event at a real local receiver, whose export URL returns the window's labeled rows and their targets in one call;
labels that bring it back clear it exactly once; the driftline_quality gauges show in /metrics, and go with the
model when it is unloaded."""

from __future__ import annotations

import io
import json
import time

import httpx
import numpy as np
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_test_repository, write_server_config

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROWS = 20  # the rule's window: the last 20 labeled rows, judged once all 20 are in
QUALITY = f"""
[capture]
enabled = true
[quality]
task = "classification"
label_output = "label"
score_output = "probabilities"
classes = [0, 1, 2]
[[quality.alerts]]
metric = "accuracy"
below = 0.9
min_labeled = {ROWS}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights, receiver):
    workdir = tmp_path_factory.mktemp("quality-alerts")
    settings = (
        f'[capture]\ndirectory = "{workdir / "captures"}"\nsegment_seconds = 0.2\n'
        f"[quality]\ncheck_interval_s = 0.3\n"
        f'[alerts]\nwebhooks = ["{receiver.url}"]\nbackoff_s = 0.05\n'
    )
    config = write_server_config(workdir / "server.toml", settings)
    root = build_test_repository(workdir / "models", iris_weights)
    with (root / "iris" / "config.toml").open("a") as f:
        f.write(QUALITY)
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


def _predict(url: str, prefix: str, rng: np.random.Generator) -> dict[str, int]:
    """ROWS one-row requests to iris version 2 with ids prefix-0.. ; their predicted labels by id."""
    predicted = {}
    for i in range(ROWS):
        x = rng.normal(size=(1, 4)).astype(np.float32)
        body = {
            "id": f"{prefix}-{i}",
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x[0].tolist()}],
        }
        r = httpx.post(f"{url}/v2/models/iris/versions/2/infer", json=body, timeout=10)
        assert r.status_code == 200, r.text
        label = next(o for o in r.json()["outputs"] if o["name"] == "label")
        predicted[f"{prefix}-{i}"] = label["data"][0]
    return predicted


def _label(url: str, targets: dict[str, int]) -> None:
    """Post the labels once every row they name is captured (segments are written every 0.2 s), so that the
    check after it sees them all: the windows, values and events are then exact."""
    deadline = time.monotonic() + 20
    for _ in range(200):
        r = httpx.get(f"{url}/v1/models/iris/captures", params={"format": "jsonl"}, headers=HEADERS, timeout=10)
        assert r.status_code == 200, r.text
        ids = {json.loads(line)["request_id"] for line in r.text.splitlines()}
        if set(targets) <= ids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    body = {"feedback": [{"id": request_id, "target": target} for request_id, target in targets.items()]}
    r = httpx.post(f"{url}/v1/models/iris/feedback", json=body, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text


def _metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of ``name`` with these labels in a /metrics page (None: there is none)."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_rule_fires_once_with_a_working_export_url_and_clears_once(server, receiver):
    rng = np.random.default_rng(11)
    wrong = {i: (p + 1) % 3 for i, p in _predict(server.url, "bad", rng).items()}
    _label(server.url, wrong)  # every label disagrees: accuracy 0 over the last 20 labeled rows
    [fired] = receiver.wait_for(1)
    assert fired["kind"] == "quality"
    assert (fired["model"], fired["version"], fired["previous"], fired["state"]) == (
        "iris",
        "2",
        "insufficient",
        "firing",
    )
    assert fired["rule"] == {"metric": "accuracy", "op": "below", "threshold": 0.9, "min_labeled": ROWS}
    assert fired["value"] == 0.0
    assert 0.0 <= fired["lower"] <= fired["value"] <= fired["upper"] < 0.9
    assert fired["window"]["labeled"] == ROWS
    assert fired["export_url"].startswith(f"{server.url}/v1/models/iris/captures?")

    # The export URL alone gives the retraining set: the window's labeled rows with their targets.
    r = httpx.get(fired["export_url"], headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.apache.parquet")
    exported = pl.read_parquet(io.BytesIO(r.content))
    assert dict(zip(exported["request_id"], exported["target"], strict=True)) == wrong
    assert exported["version"].unique().to_list() == [2]
    assert {"in.x", "out.label", "out.probabilities", "ts", "target"} <= set(exported.columns)
    jsonl = httpx.get(fired["export_url"] + "&format=jsonl", headers=HEADERS, timeout=10)
    assert pl.read_ndjson(io.BytesIO(jsonl.content)).height == ROWS

    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert _metric(text, "driftline_quality", model="iris", version="2", metric="accuracy") == 0.0
    assert _metric(text, "driftline_quality_labeled_rows", model="iris", version="2") == ROWS
    assert _metric(text, "driftline_quality_coverage_ratio", model="iris", version="2") == 1.0

    right = _predict(server.url, "good", rng)
    _label(server.url, right)  # the newest 20 labeled rows are all right now
    fired_again, cleared = receiver.wait_for(2)
    assert fired_again == fired
    assert (cleared["previous"], cleared["state"], cleared["value"]) == ("firing", "ok", 1.0)
    time.sleep(1.5)  # several more checks: the state holds, no event is repeated
    assert len(receiver.bodies) == 2
    r = httpx.get(cleared["export_url"], headers=HEADERS, timeout=10)
    assert dict(pl.read_parquet(io.BytesIO(r.content)).select("request_id", "target").iter_rows()) == right

    r = httpx.post(f"{server.url}/v2/repository/models/iris/unload", headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    assert _metric(httpx.get(f"{server.url}/metrics", timeout=10).text, "driftline_quality", model="iris") is None


def test_a_labeled_export_of_a_model_without_labels_is_empty_and_a_bad_flag_is_a_400(server):
    r = httpx.get(f"{server.url}/v1/models/mlp/captures", params={"labeled": "true"}, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    exported = pl.read_parquet(io.BytesIO(r.content))
    assert exported.height == 0
    assert "target" in exported.columns
    r = httpx.get(f"{server.url}/v1/models/iris/captures", params={"labeled": "perhaps"}, headers=HEADERS, timeout=10)
    assert r.status_code == 400
    assert "labeled" in r.json()["error"]
