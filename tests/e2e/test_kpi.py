"""Business KPIs on a real keyed server with capture on: ``POST /v1/models/{m}/kpi`` by request id and by entity,
before and after the capture is written, an event days after its request, attributed per version of requests
pinned to two versions; ``GET`` of the same path sums them per version. Refusals name their field and store
nothing; an event_id makes a post idempotent. What is stored is read back from the server's own database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import (
    ADMIN_KEY,
    PREDICTOR_KEY,
    VIEWER_KEY,
    build_test_repository,
    viewer_and_predictor_keys,
    write_server_config,
)

from driftline.store.db import open_database
from driftline.store.kpis import KpiStore

pytestmark = pytest.mark.e2e

PREDICTOR = {"Authorization": f"Bearer {PREDICTOR_KEY}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MAX_ITEMS, MAX_BYTES = 50, 16_384
KEYS = viewer_and_predictor_keys()
X = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("kpi")
    # Segments are written only when flushed (or after an hour): events meet requests still in the queue.
    capture = (
        f'[capture]\nenabled = true\ndirectory = "{workdir / "captures"}"\nsegment_seconds = 3600\n'
        "queue_rows = 100000\n"
    )
    settings = f"[http]\nmax_request_bytes = {MAX_BYTES}\n[feedback]\nmax_items = {MAX_ITEMS}\n{capture}{KEYS}"
    config = write_server_config(workdir / "server.toml", settings)
    # iris (versions 1 and 2) and mlp: neither has [quality], which KPIs do not need.
    srv = start_server(
        build_test_repository(workdir / "models", iris_weights), workdir, {"DRIFTLINE_CONFIG": str(config)}
    )
    srv.workdir = workdir
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def store(server):
    db = open_database(server.workdir / "driftline.db")
    yield KpiStore(db)
    db.close()


def _infer(server, version: int, request_id: str, entity: str | None = None) -> None:
    body: dict = {"id": request_id, "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": X}]}
    if entity is not None:
        body["parameters"] = {"entity": entity}
    r = httpx.post(f"{server.url}/v2/models/iris/versions/{version}/infer", json=body, headers=PREDICTOR, timeout=30)
    assert r.status_code == 200, r.text


def _flush(server) -> None:
    # Erasing an entity no row has writes every queued row first: the flush the test needs, through the API.
    r = httpx.delete(f"{server.url}/v1/captures", params={"entity": "nobody"}, headers=ADMIN, timeout=60)
    assert r.status_code == 200, r.text


def _post(server, body: object, model: str = "iris", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}/kpi", json=body, headers=headers or PREDICTOR, timeout=30)


def _summary(server, model: str = "iris", **params: str) -> dict:
    r = httpx.get(f"{server.url}/v1/models/{model}/kpi", params=params, headers=VIEWER, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _kpi(summary: dict, name: str) -> dict:
    return next(k for k in summary["kpis"] if k["name"] == name)


def test_events_by_id_and_entity_attribute_per_version_before_and_after_the_flush(server):
    for i in range(6):
        _infer(server, 1 + i % 2, f"buy-{i}", entity=f"shopper-{i}")
    # Posted while every request is still queued: none is visible yet, each event counts as unattributed now.
    early = [{"id": f"buy-{i}", "name": "conversion", "value": 1} for i in range(6)]
    r = _post(server, {"kpi": early})
    assert (r.status_code, r.json()) == (200, {"stored": 6, "unattributed": 6})
    assert _kpi(_summary(server), "conversion") == {"name": "conversion", "unattributed": 6, "versions": []}

    _flush(server)
    days_later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    late = [{"entity": f"shopper-{i}", "name": "revenue", "value": 10.0 * (i + 1), "at": days_later} for i in range(6)]
    late.append({"id": "never-served", "name": "revenue", "value": 99})
    r = _post(server, {"kpi": late})
    assert (r.status_code, r.json()) == (200, {"stored": 7, "unattributed": 1})

    summary = _summary(server)
    assert _kpi(summary, "conversion") == {
        "name": "conversion",
        "unattributed": 0,  # the early events attribute now that their requests are written
        "versions": [
            {"version": 1, "events": 3, "sum": 3.0, "mean": 1.0},
            {"version": 2, "events": 3, "sum": 3.0, "mean": 1.0},
        ],
    }
    # shopper-0, -2, -4 met version 1 (10 + 30 + 50), -1, -3, -5 version 2 (20 + 40 + 60), three days later.
    assert _kpi(summary, "revenue") == {
        "name": "revenue",
        "unattributed": 1,
        "versions": [
            {"version": 1, "events": 3, "sum": 90.0, "mean": 30.0},
            {"version": 2, "events": 3, "sum": 120.0, "mean": 40.0},
        ],
    }
    # A window that ends before the requests: none of them in it, and the events of its own time are none.
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert _summary(server, until=before)["kpis"] == []


def test_an_event_id_makes_a_post_idempotent_and_events_without_one_are_sums(server):
    _infer(server, 2, "idem-1")
    _flush(server)
    order = {"id": "idem-1", "name": "order_total", "value": 25.5, "event_id": "order-77"}
    for _ in range(3):  # a client retrying the same order
        r = _post(server, order)
        assert (r.status_code, r.json()) == (200, {"stored": 1, "unattributed": 0})
    click = {"id": "idem-1", "name": "click", "value": 1}
    assert _post(server, {"kpi": [click, click]}).json() == {"stored": 2, "unattributed": 0}
    summary = _summary(server)
    assert _kpi(summary, "order_total")["versions"] == [{"version": 2, "events": 1, "sum": 25.5, "mean": 25.5}]
    assert _kpi(summary, "click")["versions"] == [{"version": 2, "events": 2, "sum": 2.0, "mean": 1.0}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kpi": [{"id": "a", "name": "bad", "value": 1}, {"id": "b", "name": "bad", "value": "x"}]}, "kpi[1].value"),
        ({"kpi": [{"id": "a", "name": "bad", "value": True}]}, "kpi[0].value"),
        ({"kpi": [{"id": "a", "name": "bad", "value": 1}, {"id": "b", "value": 1}]}, "kpi[1]"),
        ({"kpi": [{"id": "a", "name": "no spaces", "value": 1}]}, "kpi[0].name"),
        ({"kpi": [{"id": "a", "entity": "e", "name": "bad", "value": 1}]}, "kpi[0].entity"),
        ({"kpi": [{"name": "bad", "value": 1}]}, "kpi[0].id"),
        ({"kpi": [{"id": 7, "name": "bad", "value": 1}]}, "kpi[0].id"),
        ({"kpi": [{"id": "a", "name": "bad", "value": 1, "at": "2026-01-01T00:00:00"}]}, "kpi[0].at"),
        ({"kpi": [{"id": "a", "name": "bad", "value": 1, "colour": "red"}]}, "colour"),
        ({"kpi": [{"id": f"a{i}", "name": "bad", "value": 1} for i in range(MAX_ITEMS + 1)]}, "kpi"),
        ({"kpi": []}, "kpi"),
        ({"kpi": [{"id": "a", "name": "bad", "value": 1}], "extra": 1}, "extra"),
        ({"id": "a", "name": "bad", "value": None}, "value"),
        ([{"id": "a", "name": "bad", "value": 1}], "kpi body"),
    ],
)
def test_every_bad_field_is_a_400_naming_it_and_nothing_is_stored(server, store, body, field):
    before = store.frame("iris").height
    r = _post(server, body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]
    assert store.frame("iris").height == before  # all or none: the good items before the bad one are not kept


def test_bodies_that_are_not_json_or_too_large_store_nothing(server, store):
    before = store.frame("iris").height
    r = httpx.post(f"{server.url}/v1/models/iris/kpi", content=b"{nope", headers=PREDICTOR, timeout=30)
    assert r.status_code == 400, r.text
    assert "kpi body" in r.json()["error"]
    r = _post(server, {"id": "big", "name": "c", "value": 1, "event_id": "x" * MAX_BYTES})
    assert r.status_code == 413, r.text
    assert store.frame("iris").height == before


def test_unknown_model_is_a_404_before_the_body_and_a_model_without_quality_takes_kpis(server):
    r = _post(server, {"nothing": "valid"}, model="nosuch")
    assert (r.status_code, r.json()) == (404, {"error": "model 'nosuch' is not in the repository"})
    r = httpx.get(f"{server.url}/v1/models/nosuch/kpi", headers=VIEWER, timeout=30)
    assert r.status_code == 404, r.text
    r = _post(server, {"entity": "someone", "name": "signup", "value": 1}, model="mlp")
    assert (r.status_code, r.json()) == (200, {"stored": 1, "unattributed": 1})
    assert _summary(server, "mlp")["kpis"] == [{"name": "signup", "unattributed": 1, "versions": []}]


def test_roles_and_query_parameters(server):
    event = {"id": "auth", "name": "auth_check", "value": 1}
    assert _post(server, event, headers=VIEWER).status_code == 403
    assert httpx.post(f"{server.url}/v1/models/iris/kpi", json=event, timeout=30).status_code == 401
    assert httpx.get(f"{server.url}/v1/models/iris/kpi", timeout=30).status_code == 401
    assert _post(server, event).status_code == 200
    for name, value in (("since", "yesterday"), ("until", "2026-01-01T00:00:00")):
        r = httpx.get(f"{server.url}/v1/models/iris/kpi", params={name: value}, headers=VIEWER, timeout=30)
        assert r.status_code == 400, r.text
        assert repr(name) in r.json()["error"]


def test_the_openapi_document_names_the_body_and_the_answers(server):
    doc = httpx.get(f"{server.url}/docs/openapi.json", timeout=30).json()
    post = doc["paths"]["/v1/models/{name}/kpi"]["post"]
    one, many = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert set(one["required"]) == {"name", "value"}
    assert set(one["properties"]) == {"id", "entity", "name", "value", "at", "event_id"}
    assert one["properties"]["value"]["type"] == "number"
    assert many["properties"]["kpi"]["items"] == one
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][answer]["properties"]) == {"stored", "unattributed"}
    assert {"400", "401", "403", "404", "413"} <= set(post["responses"])
    get = doc["paths"]["/v1/models/{name}/kpi"]["get"]
    assert {p["name"] for p in get["parameters"]} >= {"since", "until"}


def test_erasing_an_entity_erases_its_kpi_events_and_those_of_its_requests(server, store):
    _infer(server, 1, "erase-kpi-1", entity="carol")
    _infer(server, 1, "erase-kpi-2", entity="dave")
    events = [
        {"entity": "carol", "name": "erasable", "value": 1},
        {"id": "erase-kpi-1", "name": "erasable", "value": 2},  # carol's request: her data too
        {"id": "erase-kpi-2", "name": "erasable", "value": 4},
    ]
    assert _post(server, {"kpi": events}).status_code == 200
    r = httpx.delete(f"{server.url}/v1/captures", params={"entity": "carol"}, headers=ADMIN, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {"entity": "carol", "captured_rows": 1, "labels": 0, "kpi_events": 2}
    left = store.frame("iris").filter(pl.col("name") == "erasable")
    assert left.select("request_id", "entity", "value").rows() == [("erase-kpi-2", None, 4.0)]
