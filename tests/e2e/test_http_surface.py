"""The HTTP surface around inference: media types, HEAD, 405's Allow, query checks, Triton's load body, the
config.pbtxt warning, and error answers counted in driftline_requests_total."""

from __future__ import annotations

import re

import httpx
import polars as pl
import pytest
from litestar.testing import TestClient
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository, metric

from driftline.config import ServerSettings
from driftline.http.app import create_app
from driftline.repository.demo import IRIS_FEATURES, iris_like_data

pytestmark = pytest.mark.e2e

GOOD = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"


def strict_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Parse a Content-Type the way Go's mime.ParseMediaType does: a duplicate parameter is an error."""
    kind, *params = (p.strip() for p in value.split(";"))
    assert re.fullmatch(f"{_TOKEN}/{_TOKEN}", kind), value
    out: dict[str, str] = {}
    for param in params:
        key, sep, val = param.partition("=")
        assert sep, f"malformed parameter {param!r} in {value!r}"
        assert re.fullmatch(_TOKEN, key), f"malformed parameter {param!r} in {value!r}"
        assert key.lower() not in out, f"duplicate parameter {key!r} in {value!r}"
        out[key.lower()] = val
    return kind, out


@pytest.fixture(scope="module")
def srv(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("surface")
    root = build_test_repository(workdir / "models", iris_weights)
    x_ref, _ = iris_like_data(500, seed=11)
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        root / "iris" / "reference.parquet"
    )
    # A Triton repository brought over as is: driftline does not read config.pbtxt and must say so.
    (root / "mlp" / "config.pbtxt").write_text('name: "mlp"\nmax_batch_size: 8\n')
    config = workdir / "server.toml"
    config.write_text("[drift]\nwindow_rows = 50\ncheck_interval_s = 0\n")
    server = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield server
    server.stop()


def test_metrics_and_html_report_carry_one_charset(srv):
    for _ in range(3):
        body = {"inputs": [{**GOOD["inputs"][0], "shape": [16, 4], "data": [5.1, 3.5, 1.4, 0.2] * 16}]}
        assert httpx.post(f"{srv.url}/v2/models/iris/versions/1/infer", json=body, timeout=10).status_code == 200
    metrics = httpx.get(f"{srv.url}/metrics", timeout=10)
    kind, params = strict_media_type(metrics.headers["content-type"])
    assert (kind, params) == ("text/plain", {"version": "0.0.4", "charset": "utf-8"})
    html = httpx.get(f"{srv.url}/v1/models/iris/versions/1/drift?format=html", timeout=10)
    assert html.status_code == 200, html.text
    assert strict_media_type(html.headers["content-type"]) == ("text/html", {"charset": "utf-8"})


def test_an_unknown_drift_format_is_a_400_naming_the_values(srv):
    r = httpx.get(f"{srv.url}/v1/models/iris/versions/1/drift?format=xml", timeout=10)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert "format" in error
    assert "json" in error
    assert "html" in error
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/v2/models/iris", "/metrics"])
def test_head_answers_like_get_without_a_body(srv, path):
    get = httpx.get(f"{srv.url}{path}", timeout=10)
    head = httpx.head(f"{srv.url}{path}", timeout=10)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_405_says_which_methods_are_allowed(srv):
    r = httpx.get(f"{srv.url}/v2/models/iris/infer", timeout=10)
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]
    assert "error" in r.json()
    r = httpx.delete(f"{srv.url}/v2/health/live", timeout=10)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "HEAD"}


def test_triton_load_refuses_a_config_override(srv):
    url = f"{srv.url}/v2/repository/models/mlp/load"
    r = httpx.post(url, json={"parameters": {"config": '{"max_batch_size": 4}'}}, timeout=30)
    assert r.status_code == 400, r.text
    assert "config overrides are not supported" in r.json()["error"]
    r = httpx.post(url, json={"parameters": {"file:1/model.onnx": "AAAA"}}, timeout=30)
    assert r.status_code == 400, r.text
    assert httpx.post(url, timeout=30).status_code == 200  # a plain (re)load still works
    assert httpx.post(url, json={"parameters": {}}, timeout=30).status_code == 200


def test_a_config_pbtxt_is_named_in_a_warning_and_the_model_notes(srv):
    pbtxt = str(srv.root / "mlp" / "config.pbtxt")
    notes = httpx.get(f"{srv.url}/v2/models/mlp", timeout=10).json()["parameters"]["notes"]
    assert any(pbtxt in n and "is not read" in n for n in notes), notes
    config = httpx.get(f"{srv.url}/v2/models/mlp/config", timeout=10).json()
    assert pbtxt in config["parameters"]["notes"]["string_value"]
    assert httpx.get(f"{srv.url}/v2/models/iris", timeout=10).json()["parameters"]["notes"] == []
    warnings = [line for line in srv.log.read_text().splitlines() if "config.pbtxt" in line]
    assert len(warnings) == 1, warnings  # once, however often the folder is read
    assert "WARNING" in warnings[0]
    assert pbtxt in warnings[0]


def test_error_answers_are_counted_with_bounded_labels(srv):
    before = httpx.get(f"{srv.url}/metrics", timeout=10).text
    labels_400 = {"model": "iris", "version": "1", "outcome": "failure", "code": "400"}
    labels_404 = {"model": "_unknown", "version": "", "outcome": "failure", "code": "404"}
    start_400 = metric(before, "driftline_requests_total", labels_400) or 0.0
    start_404 = metric(before, "driftline_requests_total", labels_404) or 0.0
    assert httpx.post(f"{srv.url}/v2/models/iris/versions/1/infer", json={"inputs": []}, timeout=10).status_code == 400
    for i in range(3):
        r = httpx.post(f"{srv.url}/v2/models/random-name-{i}/infer", json=GOOD, timeout=10)
        assert r.status_code == 404
    r = httpx.post(f"{srv.url}/v2/models/iris/versions/no-such-alias/infer", json=GOOD, timeout=10)
    assert r.status_code == 404
    text = httpx.get(f"{srv.url}/metrics", timeout=10).text
    assert metric(text, "driftline_requests_total", labels_400) == start_400 + 1
    assert metric(text, "driftline_requests_total", labels_404) == start_404 + 3
    iris_404 = {"model": "iris", "version": "", "outcome": "failure", "code": "404"}
    assert (metric(text, "driftline_requests_total", iris_404) or 0) >= 1
    assert "random-name" not in text
    assert "no-such-alias" not in text
    ok = {"model": "iris", "version": "1", "outcome": "success", "code": "200"}
    assert (metric(text, "driftline_requests_total", ok) or 0) >= 1


# In-process, Litestar's deprecation of the inferred query style (a handler's second path without `{version}`
# makes `version` a query parameter there) is raised by filterwarnings=error; the subprocess servers only log it.
@pytest.mark.filterwarnings("ignore::litestar.exceptions.LitestarDeprecationWarning")
def test_the_litestar_inference_route_counts_errors_too(tmp_path, iris_weights):
    """Without the fast path in front (create_app alone), the Litestar route answers and counts."""
    root = build_test_repository(tmp_path / "models", iris_weights)
    settings = ServerSettings(repository=str(root), database=str(tmp_path / "driftline.db"))
    with TestClient(create_app(settings)) as client:
        assert client.post("/v2/models/iris/versions/1/infer", json={"inputs": []}).status_code == 400
        assert client.post("/v2/models/nope/infer", json=GOOD).status_code == 404
        text = client.get("/metrics").text
    assert (
        metric(text, "driftline_requests_total", {"model": "iris", "version": "1", "outcome": "failure", "code": "400"})
        == 1
    )
    assert (
        metric(
            text, "driftline_requests_total", {"model": "_unknown", "version": "", "outcome": "failure", "code": "404"}
        )
        == 1
    )
