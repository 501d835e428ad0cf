"""Ground-truth feedback on a real keyed server: ``POST /v1/models/{m}/feedback`` and ``driftline feedback upload``
as a user types it; what is stored is read back through the store, from the server's own database."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import (
    IRIS_QUALITY,
    PREDICTOR_KEY,
    VIEWER_KEY,
    assert_one_line_refusal,
    build_test_repository,
    viewer_and_predictor_keys,
    write_config,
    write_server_config,
)

from driftline.store.db import open_database
from driftline.store.feedback import FeedbackStore

pytestmark = pytest.mark.e2e

PREDICTOR = {"Authorization": f"Bearer {PREDICTOR_KEY}"}
MAX_ITEMS = 5  # small, so that an upload of a dozen lines goes in batches
MAX_BYTES = 4096
KEYS = viewer_and_predictor_keys()


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("feedback")
    settings = f"[http]\nmax_request_bytes = {MAX_BYTES}\n[feedback]\nmax_items = {MAX_ITEMS}\n{KEYS}"
    config = write_server_config(workdir / "server.toml", settings)
    root = build_test_repository(workdir / "models", iris_weights)
    write_config(root / "iris", IRIS_QUALITY)  # mlp keeps its config without [quality]
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    srv.workdir = workdir
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def store(server):
    db = open_database(server.workdir / "driftline.db")
    yield FeedbackStore(db)
    db.close()


def _post(server, model: str, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}/feedback", json=body, headers=headers or PREDICTOR, timeout=30)


def _keys(store: FeedbackStore) -> dict[tuple[str | None, int | None, str | None], str]:
    return {(f.request_id, f.row, f.entity): f.target for f in store.labels("iris")}


def test_labels_one_a_list_and_by_entity_the_same_key_twice_counts_once(server, store):
    r = _post(server, "iris", {"id": "one", "target": 2})
    # This server captures nothing: every label is unmatched (as of now, and for good).
    assert (r.status_code, r.json()) == (200, {"stored": 1, "replaced": 0, "unmatched": 1})
    body = {
        "feedback": [
            {"id": "many", "row": 0, "target": 0},
            {"id": "many", "row": 1, "target": 1},
            {"id": "many", "row": 1, "target": 2},  # the same key again in one body: the last wins, once
            {"entity": "customer-7", "target": 1},
        ]
    }
    r = _post(server, "iris", body)
    assert (r.status_code, r.json()) == (200, {"stored": 3, "replaced": 0, "unmatched": 3})
    r = _post(server, "iris", {"feedback": [{"id": "one", "target": 0}, {"entity": "customer-7", "target": 2}]})
    assert (r.status_code, r.json()) == (200, {"stored": 2, "replaced": 2, "unmatched": 2})
    labels = _keys(store)
    assert {k: v for k, v in labels.items() if k[0] in ("one", "many") or k[2] == "customer-7"} == {
        ("one", 0, None): "0",
        ("many", 0, None): "0",
        ("many", 1, None): "2",
        (None, None, "customer-7"): "2",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"feedback": [{"id": "bad-1", "target": 1}, {"id": "bad-2", "target": 1.5}]}, "feedback[1].target"),
        ({"feedback": [{"id": "bad-1", "target": 1}, {"id": "bad-2"}]}, "target"),
        ({"feedback": [{"id": "bad-1", "target": 1, "colour": "red"}]}, "colour"),
        ({"feedback": [{"id": "bad-1", "row": -1, "target": 1}]}, "feedback[0].row"),
        ({"feedback": [{"id": 7, "target": 1}]}, "feedback[0].id"),
        ({"feedback": [{"id": "bad-1", "entity": "e", "target": 1}]}, "feedback[0].entity"),
        ({"feedback": [{"entity": "bad-e", "row": 0, "target": 1}]}, "feedback[0].row"),
        ({"feedback": [{"id": f"bad-{i}", "target": 1} for i in range(MAX_ITEMS + 1)]}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [], "extra": 1}, "extra"),
        ({"target": None, "id": "bad-1"}, "target"),
        ([{"id": "bad-1", "target": 1}], "feedback body"),
    ],
)
def test_every_bad_field_is_a_400_naming_it_and_nothing_is_stored(server, store, body, field):
    before = _keys(store)
    r = _post(server, "iris", body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]
    assert _keys(store) == before


def test_a_body_that_is_not_json_is_a_400(server, store):
    before = _keys(store)
    r = httpx.post(f"{server.url}/v1/models/iris/feedback", content=b"{nope", headers=PREDICTOR, timeout=30)
    assert r.status_code == 400, r.text
    assert "feedback body" in r.json()["error"]
    assert _keys(store) == before


def test_a_body_over_the_server_limit_is_a_413_and_nothing_is_stored(server, store):
    before = _keys(store)
    r = _post(server, "iris", {"id": "big", "target": "x" * MAX_BYTES})
    assert r.status_code == 413, r.text
    assert "error" in r.json()
    assert _keys(store) == before


def test_unknown_model_404_before_the_body_and_no_quality_table_409(server):
    r = _post(server, "nosuch", {"nothing": "valid"})
    assert (r.status_code, r.json()) == (404, {"error": "model 'nosuch' is not in the repository"})
    r = _post(server, "mlp", {"id": "x", "target": 1})
    assert r.status_code == 409, r.text
    assert "[quality]" in r.json()["error"]


def test_a_viewer_key_is_refused_a_predictor_key_is_taken_and_none_is_401(server):
    viewer = {"Authorization": f"Bearer {VIEWER_KEY}"}
    assert _post(server, "iris", {"id": "auth", "target": 1}, viewer).status_code == 403
    r = httpx.post(f"{server.url}/v1/models/iris/feedback", json={"id": "auth", "target": 1}, timeout=30)
    assert r.status_code == 401
    assert _post(server, "iris", {"id": "auth", "target": 1}).status_code == 200
    terms = httpx.get(f"{server.url}/v1/models/iris/feedback", headers=viewer, timeout=30)
    assert terms.json() == {"model": "iris", "task": "classification", "max_items": MAX_ITEMS}


def _upload(server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "driftline.cli", "feedback", "upload", *args, "--url", server.url]
    return subprocess.run([*command, "--key", PREDICTOR_KEY], capture_output=True, text=True, timeout=120, check=False)


def test_cli_uploads_a_csv_and_a_parquet_file_in_batches(server, store, tmp_path):
    csv = tmp_path / "labels.csv"
    lines = [f"007-{i},{i % 2},{i % 3}" for i in range(12)]  # ids with a leading zero stay text
    csv.write_text("request,row,label\n" + "\n".join(lines) + "\n")
    out = _upload(server, "iris", str(csv), "--id-column", "request", "--row-column", "row", "--target-column", "label")
    assert out.returncode == 0, out.stderr
    summary = {"model": "iris", "labels": 12, "stored": 12, "replaced": 0, "unmatched": 12, "batches": 3}
    assert [json.loads(line) for line in out.stdout.splitlines()] == [summary]
    labels = _keys(store)
    assert all(labels[(f"007-{i}", i % 2, None)] == str(i % 3) for i in range(12))

    parquet = tmp_path / "labels.parquet"
    pl.DataFrame({"customer": ["p-1", "p-2"], "y": [2, 0]}).write_parquet(parquet)
    out = _upload(server, "iris", str(parquet), "--entity-column", "customer", "--target-column", "y")
    assert out.returncode == 0, out.stderr
    assert '"stored": 2' in out.stdout
    found = [store.by_entity("iris", e) for e in ("p-1", "p-2")]
    assert [(f.target, f.request_id, f.row) for f in found if f is not None] == [("2", None, None), ("0", None, None)]


def test_cli_refuses_a_bad_column_in_one_line(server, store, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("request,label\nx-1,1\n")
    before = _keys(store)
    out = _upload(server, "iris", str(csv), "--id-column", "request", "--target-column", "nope")
    assert_one_line_refusal(out, "'nope'", str(csv))
    assert _keys(store) == before


def test_the_openapi_document_names_the_body_and_the_answer(server):
    doc = httpx.get(f"{server.url}/docs/openapi.json", timeout=30).json()
    op = doc["paths"]["/v1/models/{name}/feedback"]["post"]
    one, many = op["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert one["required"] == ["target"]
    assert set(one["properties"]) == {"id", "row", "entity", "target"}
    assert many["properties"]["feedback"]["items"] == one
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][answer]["properties"]) == {"stored", "replaced", "unmatched"}
