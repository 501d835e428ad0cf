"""Live quality on a real server: 10,000 captured predictions of a binary ONNX classifier (two versions), labels for
60% of them posted in shuffled order, half while their rows are still queued in the capture writer and half after
it flushed; ``GET /v1/models/{m}/quality`` then equals scikit-learn on exactly the joined rows. Also the HTML page,
every bad query parameter, the feedback answer's ``unmatched`` and ``driftline models quality``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import jsonschema
import numpy as np
import polars as pl
import pytest
from sklearn import metrics
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, assert_one_line_refusal, write_config, write_server_config
from tests.helpers import BINARY_QUALITY as QUALITY

from driftline.repository.demo import build_classifier_onnx, build_mlp_onnx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
REQUESTS, LABELED, WORKERS, BATCH = 10_000, 0.6, 8, 1_000
BINARY = f'max_batch_size = 64\nversion_policy = {{ policy = "all" }}\n[capture]\nenabled = true\n{QUALITY}'


@dataclass
class Traffic:
    """What the test sent: each request's version, and the labels posted (request id -> true class)."""

    versions: dict[str, int]
    labels: dict[str, int]
    early: list[dict]  # the answers of the posts made while every row was still queued
    late: list[dict]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quality")
    root = workdir / "models"
    rng = np.random.default_rng(11)
    w, b = rng.normal(size=(4, 2)).astype(np.float32), np.zeros(2, np.float32)
    build_classifier_onnx(root / "binary" / "1" / "model.onnx", w, b)
    build_classifier_onnx(root / "binary" / "2" / "model.onnx", w * 0.5 + 0.2, b)
    write_config(root / "binary", BINARY)
    build_classifier_onnx(root / "quiet" / "1" / "model.onnx", w, b)  # [quality] but capture off
    write_config(root / "quiet", f"max_batch_size = 8\n{QUALITY}")
    build_mlp_onnx(root / "plain" / "1" / "model.onnx", 4, 8, 1, 2, seed=1)  # no [quality]
    write_config(root / "plain", "max_batch_size = 8\n")
    # Segments are written only when flushed (or after an hour): posted labels meet rows still in the queue.
    capture = f'[capture]\ndirectory = "{workdir / "captures"}"\nsegment_seconds = 3600\nqueue_rows = 100000\n'
    config = write_server_config(workdir / "server.toml", capture)
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


def _send(url: str, requests: list[tuple[str, int, list[float]]]) -> dict[str, int]:
    """POST each (id, version, x) request; returns each id's predicted label as the server answered it."""
    out: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for request_id, version, x in requests:
            body = {"id": request_id, "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x}]}
            r = client.post(f"/v2/models/binary/versions/{version}/infer", json=body)
            assert r.status_code == 200, r.text
            label = next(o for o in r.json()["outputs"] if o["name"] == "label")
            out[request_id] = int(label["data"][0])
    return out


def _post_labels(url: str, labels: list[tuple[str, int]]) -> list[dict]:
    answers = []
    for start in range(0, len(labels), BATCH):
        body = {"feedback": [{"id": i, "row": 0, "target": t} for i, t in labels[start : start + BATCH]]}
        r = httpx.post(f"{url}/v1/models/binary/feedback", json=body, headers=HEADERS, timeout=60)
        assert r.status_code == 200, r.text
        answers.append(r.json())
    return answers


@pytest.fixture(scope="module")
def traffic(server) -> Traffic:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(REQUESTS, 4)).astype(np.float32)
    requests = [(f"q-{i}", 1 + i % 2, x[i].tolist()) for i in range(REQUESTS)]
    shares = [requests[k::WORKERS] for k in range(WORKERS)]  # bounded concurrency: WORKERS clients at a time
    with ThreadPoolExecutor(WORKERS) as pool:
        predicted: dict[str, int] = {}
        for part in pool.map(lambda share: _send(server.url, share), shares):
            predicted.update(part)
    assert len(predicted) == REQUESTS
    # 60% of each version labeled: the prediction, flipped for a fifth of them (so every metric is informative).
    chosen = []
    for version in (1, 2):
        ids = [r[0] for r in requests if r[1] == version]
        chosen += [ids[j] for j in rng.permutation(len(ids))[:3000]]
    truth = {i: predicted[i] ^ int(rng.uniform() < 0.2) for i in chosen}
    shuffled = list(truth.items())
    rng.shuffle(shuffled)
    half = len(shuffled) // 2
    early = _post_labels(server.url, shuffled[:half])
    # Erasing an entity no row has writes every queued row first: the flush the test needs, through the API.
    r = httpx.delete(f"{server.url}/v1/captures", params={"entity": "nobody"}, headers=HEADERS, timeout=60)
    assert r.status_code == 200, r.text
    status = httpx.get(f"{server.url}/v1/captures/status", headers=HEADERS, timeout=10).json()
    assert (status["captured_rows"], status["dropped_rows"], status["queue_rows"]) == (REQUESTS, 0, 0)
    late = _post_labels(server.url, shuffled[half:])
    return Traffic({r[0]: r[1] for r in requests}, truth, early, late)


def _quality(server, model: str = "binary", **query: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/models/{model}/quality", params=query, headers=HEADERS, timeout=120)


def _joined(server, traffic: Traffic) -> pl.DataFrame:
    """The captured rows (exported) joined to the labels the test posted: the rows the report must be of."""
    r = httpx.get(f"{server.url}/v1/models/binary/captures", params={"format": "parquet"}, headers=HEADERS, timeout=60)
    assert r.status_code == 200
    captured = pl.read_parquet(io.BytesIO(r.content))
    assert captured.height == REQUESTS
    labels = pl.DataFrame({"request_id": list(traffic.labels), "target": list(traffic.labels.values())})
    return captured.join(labels, on="request_id", how="inner")


def test_labels_posted_before_the_flush_count_as_unmatched_as_of_then(traffic):
    # While every row was queued, no posted label named a visible row; once written, every one does.
    assert [a["unmatched"] for a in traffic.early] == [a["stored"] for a in traffic.early] == [BATCH] * 3
    assert [a["unmatched"] for a in traffic.late] == [0, 0, 0]
    assert sum(a["replaced"] for a in traffic.early + traffic.late) == 0


def test_the_report_equals_scikit_learn_on_exactly_the_joined_rows(server, traffic):
    r = _quality(server)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["task"] == "classification"
    assert report["unmatched"] == 0  # the live figure: the early labels found their rows once written
    joined = _joined(server, traffic)
    assert sum(v["labeled"] for v in report["versions"]) == joined.height == 6000
    assert [v["version"] for v in report["versions"]] == [1, 2]
    for v in report["versions"]:
        rows = joined.filter(pl.col("version") == v["version"])
        assert (v["captured"], v["labeled"], v["coverage"]) == (5000, 3000, 0.6)
        assert rows.height == 3000
        y = rows["target"].to_numpy()
        pred = rows["out.label"].to_numpy()
        proba = np.asarray(rows["out.probabilities"].to_list(), dtype=np.float64)
        q = v["overall"]
        assert q["n"] == 3000
        assert abs(q["accuracy"]["value"] - metrics.accuracy_score(y, pred)) <= 1e-12
        p, rc, f1, _ = metrics.precision_recall_fscore_support(y, pred, labels=[0, 1], average="macro", zero_division=0)
        assert abs(q["precision_macro"]["value"] - p) <= 1e-12
        assert abs(q["recall_macro"]["value"] - rc) <= 1e-12
        assert abs(q["f1_macro"]["value"] - f1) <= 1e-12
        with warnings.catch_warnings():
            # float32 softmax rows sum to 1 within 1e-7, past sklearn's sqrt(float64 eps) check; the loss is the same
            warnings.filterwarnings("ignore", "The y_prob values do not sum to one", UserWarning)
            assert abs(q["log_loss"]["value"] - metrics.log_loss(y, proba, labels=[0, 1])) <= 1e-12
        assert abs(q["roc_auc"]["value"] - metrics.roc_auc_score(y == 1, proba[:, 1])) <= 1e-12
        assert q["positive"] == 1
        assert q["confusion"] == {
            "labels": [0, 1],
            "counts": metrics.confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        }
        for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss", "roc_auc"):
            e = q[name]
            assert e["lower"] <= e["value"] <= e["upper"], name
    total = sum(v["captured"] for v in report["versions"])
    assert sum(v["labeled"] for v in report["versions"]) / total == LABELED


def test_windows_one_version_and_labels_of_no_capture(server, traffic):
    r = _quality(server, version="2", window="1000")
    assert r.status_code == 200, r.text
    (v,) = r.json()["versions"]
    assert v["version"] == 2
    # A window closes at each 1000th labeled row; captured rows after the last labeled one make a window of none.
    assert [w["labeled"] for w in v["windows"]][:3] == [1000, 1000, 1000]
    assert sum(w["labeled"] for w in v["windows"]) == 3000
    assert all(w["quality"] is None for w in v["windows"][3:])
    assert sum(w["captured"] for w in v["windows"]) == 5000
    hourly = _quality(server, window="1h").json()
    assert all(sum(w["labeled"] for w in v["windows"]) == 3000 for v in hourly["versions"])
    assert _quality(server, until="2000-01-01T00:00:00Z").json()["versions"] == []
    # Labels of requests never captured are kept and counted, in the post's answer and in the report.
    answer = _post_labels(server.url, [(f"never-{i}", 1) for i in range(7)])
    assert answer == [{"stored": 7, "replaced": 0, "unmatched": 7}]
    assert _quality(server).json()["unmatched"] == 7


def test_the_answer_is_what_the_openapi_schema_documents(server, traffic):
    doc = httpx.get(f"{server.url}/docs/openapi.json", timeout=30).json()
    content = doc["paths"]["/v1/models/{name}/quality"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/html"}
    validator = jsonschema.Draft202012Validator(content["application/json"]["schema"])
    for query in ({}, {"window": "1000"}, {"window": "1h", "version": "1"}, {"until": "2000-01-01T00:00:00Z"}):
        validator.validate(_quality(server, **query).json())


def test_the_html_page(server, traffic):
    r = _quality(server, format="html", window="1h")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "Quality · binary" in page
    assert "Version 1" in page
    assert "Version 2" in page
    assert "accuracy" in page
    assert "ROC AUC" in page
    assert "Confusion matrix" in page
    assert "60.0%" in page
    assert "<svg" in page
    assert "<script" not in page


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ({"version": "one"}, "version"),
        ({"version": "-1"}, "version"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"window": "0"}, "window"),
        ({"window": "5x"}, "window"),
        ({"window": "99999d"}, "window"),
        ({"confidence": "1"}, "confidence"),
        ({"confidence": "0"}, "confidence"),
        ({"confidence": "nan"}, "confidence"),
        ({"confidence": "high"}, "confidence"),
        ({"format": "csv"}, "format"),
    ],
)
def test_each_bad_query_parameter_is_a_400_naming_it(server, query, word):
    r = _quality(server, **query)
    assert r.status_code == 400, (query, r.text)
    assert f"'{word}'" in r.json()["error"]


def test_a_window_that_would_list_too_many_windows_is_a_400(server, traffic):
    r = _quality(server, window="1")  # 3,000 labeled rows a version: a window each
    assert r.status_code == 400, r.text
    assert "window 1 would make 6,002 windows" in r.json()["error"]


def test_unknown_model_no_quality_table_capture_off_and_keys(server):
    assert _quality(server, "nosuch").status_code == 404
    r = _quality(server, "plain")
    assert r.status_code == 409
    assert "[quality]" in r.json()["error"]
    r = _quality(server, "quiet")
    assert (r.status_code, r.json()) == (200, {"task": "classification", "unmatched": 0, "versions": []})
    assert "no captured rows" in _quality(server, "quiet", format="html").text
    assert httpx.get(f"{server.url}/v1/models/binary/quality", timeout=30).status_code == 401


def _cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "driftline.cli", "models", "quality", *args, "--url", server.url]
    return subprocess.run([*command, "--key", ADMIN_KEY], capture_output=True, text=True, timeout=180, check=False)


def test_cli_tables_json_and_a_refusal(server, traffic):
    out = _cli(server, "binary")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("version 1: 3,000 of 5,000 captured rows labeled (60.0%)")
    assert any(line.split()[:1] == ["accuracy"] and "3,000/5,000" in line for line in lines)
    assert any("ROC AUC" in line for line in lines)
    out = _cli(server, "binary", "--version", "1", "--json", "--window", "1h")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == _quality(server, version="1", window="1h").json()
    assert_one_line_refusal(_cli(server, "binary", "--window", "0"), "window", "HTTP 400")
    assert_one_line_refusal(_cli(server, "plain"), "[quality]", "HTTP 409")
