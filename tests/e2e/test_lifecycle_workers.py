"""With several worker processes, a lifecycle change made through one reaches every other within the refresh
interval, and no request fails on the way (the other workers load the version before they route to it)."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import ADMIN_KEY, build_test_repository, write_config, write_server_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
HEADERS = {"authorization": f"Bearer {ADMIN_KEY}"}


def test_alias_moves_reach_every_worker(tmp_path, iris_weights):
    root = build_test_repository(tmp_path / "models", iris_weights)
    # Only version 2 loads by policy: version 1 must be loaded on request, in every worker.
    write_config(root / "iris", 'max_batch_size = 16\nversion_policy = { policy = "latest", latest = 1 }\n')
    config = write_server_config(tmp_path / "server.toml", "refresh_interval_s = 0.2\n")
    server = start_server(root, tmp_path, extra_args=["--workers", "2", "--config", str(config)])
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert {http.post("/v2/models/iris/infer", json=ROWS).json()["model_version"] for _ in range(20)} == {"2"}
            r = http.post("/v1/admin/models/iris/load", json={"version": 1}, headers=HEADERS)
            assert r.status_code == 200, r.text
            # On a new connection, which may reach the other worker: it takes in the pin before it checks.
            with httpx.Client(base_url=server.url, timeout=10) as other:
                r = other.put("/v1/admin/models/iris/aliases/champion", json={"version": 1}, headers=HEADERS)
            assert r.status_code == 200, r.text
            moved_at = time.monotonic()
            answers: list[tuple[float, int, str]] = []
            # New connections spread over both workers; bounded in count and time.
            for _ in range(400):
                with httpx.Client(base_url=server.url, timeout=10) as fresh:
                    resp = fresh.post("/v2/models/iris/infer", json=ROWS)
                answers.append(
                    (time.monotonic() - moved_at, resp.status_code, resp.json().get("model_version", resp.text))
                )
                if len(answers) > 50 and all(a[2] == "1" for a in answers[-50:]):
                    break
            assert all(code == 200 for _, code, _ in answers), [a for a in answers if a[1] != 200][:3]
            assert [a[2] for a in answers[-50:]] == ["1"] * 50
            assert answers[-50][0] < 5.0  # every worker followed within a few refresh intervals
    except Exception as exc:
        raise AssertionError(f"{exc!r}; server log:\n{server.log.read_text()[-4000:]}") from exc
    finally:
        server.stop()


def test_registry_versions_and_deletions_reach_every_worker(tmp_path, iris_weights):
    from tests.e2e.test_registry_sync import SYNC_ENV, publish

    source = tmp_path / "registry"
    write_config(source / "iris", 'max_batch_size = 16\nversion_policy = { policy = "all" }\n')
    publish(source, 1, iris_weights)
    env = {**SYNC_ENV, "DRIFTLINE_REGISTRY__SOURCE": str(source), "DRIFTLINE_REGISTRY__CACHE_DIR": str(tmp_path / "c")}
    server = start_server(tmp_path / "models", tmp_path, env=env, extra_args=["--workers", "2"])
    try:
        publish(source, 2, iris_weights)
        # One worker leads the sync; the other loads what it placed. Pinned requests on new connections reach
        # both workers; within the bound every one of the last 40 is answered by version 2.
        deadline = time.monotonic() + 30
        answers: list[int] = []
        while time.monotonic() < deadline and (len(answers) < 40 or any(code != 200 for code in answers[-40:])):
            with httpx.Client(base_url=server.url, timeout=10) as fresh:
                answers.append(fresh.post("/v2/models/iris/versions/2/infer", json=ROWS).status_code)
        assert answers[-40:] == [200] * 40

        # Version 2 deleted at the source: the leader unloads it and moves it aside, the other worker follows.
        shutil.rmtree(source / "iris" / "2")
        deadline = time.monotonic() + 30
        seen: list[tuple[int, str]] = []
        while time.monotonic() < deadline and (len(seen) < 40 or any(s != (404, "1") for s in seen[-40:])):
            with httpx.Client(base_url=server.url, timeout=10) as fresh:
                pinned = fresh.post("/v2/models/iris/versions/2/infer", json=ROWS).status_code
                unpinned = fresh.post("/v2/models/iris/infer", json=ROWS)
            assert unpinned.status_code == 200, unpinned.text  # never a failed request on the way
            seen.append((pinned, unpinned.json()["model_version"]))
        assert seen[-40:] == [(404, "1")] * 40
    finally:
        server.stop()
