"""SLOs on a real server: N requests of which K fail with a 504 (a 1 µs deadline) and the successes of one model
all over its latency threshold; the SLI counters on /metrics, ``GET /v1/ops/slo`` (a viewer's key) and the
history give the exact numbers, and the burn-rate gauges match the status; with two workers the history is exact
over both."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, VIEWER_KEY, build_test_repository, viewer_and_predictor_keys, write_server_config

from driftline.config import ServerSettings
from driftline.ops.history import version_minutes, worker_minutes
from driftline.ops.slo import slo_statuses
from driftline.repository import Repository
from driftline.store.db import open_database
from driftline.store.traffic import minute_of

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_KEY}"}
IRIS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
MLP = {"inputs": [{"name": "x", "shape": [1, 32], "datatype": "FP32", "data": [0.1] * 32}]}
N_OK, N_TIMEOUT, N_REFUSED, N_MLP = 36, 4, 2, 10


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory, iris_weights):
    """A server after the requests: (its workdir, /metrics families, GET /v1/ops/slo as viewer, the minute)."""
    workdir = tmp_path_factory.mktemp("slo")
    root = build_test_repository(workdir / "models", iris_weights)
    with (root / "iris" / "config.toml").open("a") as f:  # every success is slower than 1 µs
        f.write("\n[slo]\navailability = 0.999\nlatency_threshold_ms = 0.001\nlatency_objective = 0.5\n")
    with (root / "mlp" / "config.toml").open("a") as f:  # none is slower than a minute
        f.write("\n[slo]\nlatency_threshold_ms = 60000\n")
    config = write_server_config(workdir / "server.toml", viewer_and_predictor_keys())
    started = minute_of(time.time())
    server = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    try:
        with httpx.Client(base_url=server.url, timeout=10, headers=ADMIN) as http:
            for _ in range(N_OK):
                assert http.post("/v2/models/iris/versions/1/infer", json=IRIS).status_code == 200
            for _ in range(N_TIMEOUT):  # 1 µs: past by the time a worker takes it from the queue
                r = http.post("/v2/models/iris/versions/1/infer", json=dict(IRIS, parameters={"timeout": 1}))
                assert r.status_code == 504
            for _ in range(N_REFUSED):  # the request's own fault: not the SLO's
                r = http.post("/v2/models/iris/versions/1/infer", json=dict(IRIS, parameters={"priority": 99}))
                assert r.status_code == 400
            for _ in range(N_MLP):
                assert http.post("/v2/models/mlp/infer", json=MLP).status_code == 200
            assert http.get("/v1/ops/slo", headers={"Authorization": ""}).status_code == 401
            status = http.get("/v1/ops/slo", headers=VIEWER)  # saves this process's counts first
            assert status.status_code == 200, status.text
            # The gauges are refreshed from the history every 5 s, off the event loop: wait for one after the save.
            burn = N_TIMEOUT / (N_OK + N_TIMEOUT) / 0.001
            deadline = time.monotonic() + 20
            while True:
                metrics = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
                now = _samples(metrics, "driftline_slo_burn_rate", model="iris", slo="availability", window="5m")
                if list(now.values()) == pytest.approx([burn]) or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
        yield workdir, metrics, status.json(), started
    finally:
        server.stop()


def _samples(metrics, family: str, **labels: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels[k] for k in sorted(s.labels)): s.value
        for s in metrics[family].samples
        if all(s.labels.get(k) == v for k, v in labels.items()) and not s.name.endswith("_created")
    }


def test_sli_counters_are_exact(counted) -> None:
    _, metrics, _, _ = counted
    n = N_OK + N_TIMEOUT
    assert _samples(metrics, "driftline_slo_requests") == {("iris",): n, ("mlp",): N_MLP}
    assert _samples(metrics, "driftline_slo_errors") == {("iris",): N_TIMEOUT, ("mlp",): 0}
    assert _samples(metrics, "driftline_slo_slow_requests") == {("iris",): N_OK, ("mlp",): 0}


def test_status_route_gives_the_exact_numbers(counted) -> None:
    _, _, status, _ = counted
    by = {(s["model"], s["kind"]): s for s in status}
    n = N_OK + N_TIMEOUT
    a = by["iris", "availability"]
    assert a["objective"] == 0.999
    assert a["threshold_s"] is None
    assert a["period_s"] == 28 * 86400
    assert a["sli"] == pytest.approx(N_OK / n)
    burn = N_TIMEOUT / n / 0.001
    assert a["burn_rates"] == pytest.approx(dict.fromkeys(("5m", "30m", "1h", "6h"), burn))
    assert a["budget_left"] == pytest.approx(1 - burn)
    assert a["alerts"] == ["page", "ticket"]
    lat = by["iris", "latency"]
    assert lat["threshold_s"] == 1e-6
    assert lat["sli"] == pytest.approx(N_TIMEOUT / n)
    assert lat["burn_rates"]["5m"] == pytest.approx(N_OK / n / 0.5)
    assert lat["alerts"] == []
    m = by["mlp", "availability"]
    assert m["sli"] == 1.0
    assert m["budget_left"] == 1.0
    assert m["alerts"] == []


def test_burn_rate_gauges_match_the_status(counted) -> None:
    _, metrics, status, _ = counted
    gauges = _samples(metrics, "driftline_slo_burn_rate", model="iris")
    by = {(s["model"], s["kind"]): s for s in status}
    for (model, slo, window), value in gauges.items():
        assert value == pytest.approx(by[model, slo]["burn_rates"][window])
    assert len(gauges) == 8
    budget = _samples(metrics, "driftline_slo_error_budget_remaining", model="iris")
    assert budget[("iris", "availability")] == pytest.approx(by["iris", "availability"]["budget_left"])


def test_history_has_the_version_minutes(counted) -> None:
    workdir, _, _, started = counted
    db = open_database(workdir / "driftline.db")
    try:
        minutes = version_minutes(db, started, minute_of(time.time()) + 1, "iris")
    finally:
        db.close()
    assert sum(m.requests for m in minutes) == N_OK + N_TIMEOUT
    errors: dict[int, int] = {}
    for m in minutes:
        for code, k in m.errors.items():
            errors[code] = errors.get(code, 0) + k
    assert errors == {504: N_TIMEOUT}
    assert sum(m.rows for m in minutes) == N_OK
    assert sum(m.batches for m in minutes) >= 1
    assert any(m.p99_s is not None for m in minutes)


@pytest.mark.slow
def test_history_sums_worker_processes(tmp_path, iris_weights) -> None:
    """With two workers each saves its own counts; the status read from the database is exact over both."""
    root = build_test_repository(tmp_path / "models", iris_weights)
    started = minute_of(time.time())
    server = start_server(root, tmp_path, extra_args=["--workers", "2"])
    try:
        for i in range(30):  # new connections spread over both workers
            with httpx.Client(base_url=server.url, timeout=10) as fresh:
                body = dict(IRIS, parameters={"timeout": 1}) if i % 5 == 0 else IRIS
                assert fresh.post("/v2/models/iris/versions/1/infer", json=body).status_code == (
                    504 if i % 5 == 0 else 200
                )
    finally:
        server.stop()  # each worker saves what it counted last
    db = open_database(tmp_path / "driftline.db")
    try:
        status = slo_statuses(db, ServerSettings(repository=str(root)), Repository(root))
        workers = {w.worker for w in worker_minutes(db, started, minute_of(time.time()) + 1)}
        counted = {r[0] for r in db.query("SELECT DISTINCT process FROM traffic WHERE model = 'iris'")}
    finally:
        db.close()
    a = next(s for s in status if (s.model, s.kind) == ("iris", "availability"))
    assert a.sli == pytest.approx(24 / 30)
    assert a.burn_rates["5m"] == pytest.approx(6 / 30 / 0.001)
    assert counted <= workers
    assert 1 <= len(workers) <= 3
