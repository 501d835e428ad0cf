"""One rule for versions that are not loaded (503 when the model knows them, 404 otherwise), in the table and over
HTTP: a failed version is UNAVAILABLE with its reason in Triton's index and its readiness answers 503."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository, write_config

from driftline.errors import ModelNotFound, ModelNotReady
from driftline.repository import Repository
from driftline.serving.routing import ModelRoutes
from driftline.serving.table import ModelTable

GOOD = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def truncate_version(root: Path, version: int) -> None:
    """A version whose model.onnx is cut short, beside the good ones."""
    folder = root / "iris" / str(version)
    folder.mkdir()
    (folder / "model.onnx").write_bytes((root / "iris" / "1" / "model.onnx").read_bytes()[:120])


@pytest.fixture
async def table(repo: Path):
    truncate_version(repo, 3)
    t = ModelTable(Repository(repo), asyncio.get_running_loop())
    await t.load_all()
    yield t
    await t.close()


async def test_a_failed_version_is_unavailable_with_its_reason_in_the_index(table):
    rows = {(r["name"], r.get("version")): r for r in table.index()}
    assert rows[("iris", "1")]["state"] == rows[("iris", "2")]["state"] == "READY"
    failed = rows[("iris", "3")]
    assert failed["state"] == "UNAVAILABLE"
    assert "model.onnx" in failed["reason"]


async def test_get_and_route_share_one_rule_for_what_is_not_loaded(table):
    headers: list[tuple[bytes, bytes]] = []
    # A failed version is known: 503 with the reason, from both lookups.
    for lookup in (lambda v: table.get("iris", v), lambda v: table.route("iris", v, None, headers)):
        with pytest.raises(ModelNotReady, match="version '3' failed to load"):
            lookup("3")
        with pytest.raises(ModelNotFound, match="no version '9'"):
            lookup("9")
        with pytest.raises(ModelNotFound, match="no version or alias 'nope'"):
            lookup("nope")
    # The default alias at a version that is not loaded: 503 from both (get answered 404 before).
    table.set_routes("iris", ModelRoutes(aliases={"champion": 3}, default_alias="champion"))
    with pytest.raises(ModelNotReady, match="default version"):
        table.get("iris")
    with pytest.raises(ModelNotReady, match="default version"):
        table.route("iris", None, None, headers)
    # A known alias whose version is not loaded: 503; an unknown model: 404.
    table.set_routes("iris", ModelRoutes(aliases={"staging": 7}))
    with pytest.raises(ModelNotReady, match="alias 'staging' \\(version 7\\) is not loaded"):
        table.get("iris", "staging")
    with pytest.raises(ModelNotFound, match="'nope' not found"):
        table.route("nope", None, None, headers)


async def test_an_unloaded_model_is_present_but_not_ready(table):
    await table.unload("mlp")
    with pytest.raises(ModelNotReady, match="'mlp' is not loaded"):
        table.get("mlp")
    assert {"name": "mlp", "state": "UNAVAILABLE", "reason": "unloaded"} in table.index()


@pytest.mark.e2e
def test_a_truncated_version_over_http(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    write_config(root / "iris", 'max_batch_size = 16\nversion_policy = { policy = "all" }\n')
    truncate_version(root, 3)
    srv = start_server(root, tmp_path)
    try:
        index = httpx.post(f"{srv.url}/v2/repository/index", timeout=10).json()
        row = next(r for r in index if r["name"] == "iris" and r.get("version") == "3")
        assert row["state"] == "UNAVAILABLE"
        assert "model.onnx" in row["reason"]
        ready_only = httpx.post(f"{srv.url}/v2/repository/index", json={"ready": True}, timeout=10).json()
        assert ("iris", "3") not in {(r["name"], r.get("version")) for r in ready_only}
        ready = f"{srv.url}/v2/models/iris/versions"
        assert httpx.get(f"{ready}/2/ready", timeout=10).status_code == 200
        r = httpx.get(f"{ready}/3/ready", timeout=10)
        assert r.status_code == 503
        assert r.json()["ready"] is False
        assert httpx.get(f"{ready}/9/ready", timeout=10).status_code == 404
        r = httpx.post(f"{ready}/3/infer", json=GOOD, timeout=10)
        assert r.status_code == 503
        assert "failed to load" in r.json()["error"]
        assert httpx.post(f"{srv.url}/v2/models/iris/infer", json=GOOD, timeout=10).status_code == 200
    finally:
        srv.stop()


# Digits to str.isdigit: int() refuses superscripts (a 500 once) and takes Arabic-Indic ones; neither is a version.
@pytest.mark.parametrize("ref", ["\u00b2", "\u00b9", "\u0661"])
async def test_a_version_in_other_digits_is_unknown_not_a_crash(table, ref):
    with pytest.raises(ModelNotFound):
        table.get("iris", ref)
    with pytest.raises(ModelNotFound):
        table.route("iris", ref, None, ())
