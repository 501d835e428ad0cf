"""Three `driftline serve` replicas behind HAProxy, one repository and one PostgreSQL database: an alias moved
through one replica reaches every one within the refresh interval, a rolling restart fails no request, and a version
published as the registry sync's leader is killed is placed once and loads everywhere (the kill itself loses at
most the requests in flight on that replica)."""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.replicas import Answer, Load, Replicas, start_replicas
from tests.e2e.test_registry_sync import ROWS, SYNC_ENV, publish
from tests.helpers import ADMIN_KEY, build_test_repository, metric, write_config, write_server_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEADERS = {"authorization": f"Bearer {ADMIN_KEY}"}
REFRESH_S = 0.5
# A replica takes in a move at its first refresh tick after it; the tick's own read of the store and the swap take
# a moment more on a loaded machine (two cores shared by the whole suite).
TICK_SLACK_S = 0.5


@pytest.fixture
def database(postgres: Any) -> str:
    """The one database every replica shares: a fresh one on the session's real PostgreSQL server (the registry
    sync's leader is elected by its advisory lock; the workers of one host would share a SQLite file)."""
    return str(postgres.new_database())


@pytest.fixture
def iris_replicas(tmp_path: Path, iris_weights: Any, database: str) -> Any:
    root = build_test_repository(tmp_path / "models", iris_weights)
    config = write_server_config(tmp_path / "server.toml", f"refresh_interval_s = {REFRESH_S}\n")
    group = start_replicas(root, tmp_path, database, args=["--config", str(config)])
    yield group
    group.close()


def failures(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if not a.ok]


def test_alias_move_through_one_replica_reaches_all(iris_replicas: Replicas) -> None:
    group = iris_replicas
    with Load(group.url, "/v2/models/iris/infer", ROWS, max_seconds=60) as load:
        time.sleep(1.5)
        moved_from = time.monotonic()
        r = httpx.put(
            f"{group.server(0).url}/v1/admin/models/iris/aliases/champion", json={"version": 1}, headers=HEADERS
        )
        moved_by = time.monotonic()
        assert r.status_code == 200, r.text
        time.sleep(REFRESH_S + TICK_SLACK_S + 2.0)
        answers = load.stop()
    assert not failures(answers), (failures(answers)[:5], group.logs())
    # Before the move: the newest version (the default); after it and a refresh tick: the alias's new value.
    before = [a.version for a in answers if a.end < moved_from]
    after = [a.version for a in answers if a.start > moved_by + REFRESH_S + TICK_SLACK_S]
    last_old = max(a.start - moved_by for a in answers if a.version == "2")
    print(f"alias move: {len(answers)} answers, the last old one started {last_old:+.3f}s after the move")
    assert before
    assert set(before) == {"2"}
    assert len(after) > 20
    assert set(after) == {"1"}, [a for a in answers if a.start > moved_by and a.version != "1"]
    served = group.proxy.stats() if group.proxy else {}
    assert all(int(served[f"r{i}"]["req_tot"]) > 0 for i in range(3)), served  # every replica took part


def test_rolling_restart_fails_no_request(tmp_path: Path, iris_weights: Any, database: str) -> None:
    root = build_test_repository(tmp_path / "models", iris_weights)
    # Readiness answers 503 for a second at SIGTERM, so HAProxy (checking every 200 ms) stops sending before the
    # listener closes; what is in flight finishes.
    extra = f"refresh_interval_s = {REFRESH_S}\n[http]\ndrain_delay_s = 1.0\n"
    config = write_server_config(tmp_path / "server.toml", extra)
    group = start_replicas(root, tmp_path, database, args=["--config", str(config)])
    assert group.proxy is not None
    try:
        with Load(group.url, "/v2/models/iris/infer", ROWS, max_seconds=240) as load:
            time.sleep(1.0)
            for i in range(3):
                # uvicorn raises the signal again once it has shut down cleanly: death by SIGTERM is a clean exit.
                assert group.stop(i) in (0, -signal.SIGTERM)
                group.start(i)
                group.proxy.wait_for(f"r{i}", "UP")
            time.sleep(1.0)
            answers = load.stop()
        totals = group.proxy.stats()["BACKEND"]
        retried, moved = totals["wretr"], totals["wredis"]
        print(f"rolling restart: {len(answers)} answers; haproxy retried {retried}, redispatched {moved}")
        assert len(answers) > 100
        assert not failures(answers), (failures(answers)[:5], group.logs())
    finally:
        group.close()


def registry_status(url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/admin/registry", headers=HEADERS, timeout=5)
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def version_state(url: str, version: int) -> str | None:
    body = httpx.get(f"{url}/v1/admin/models/iris", headers=HEADERS, timeout=5).json()
    return next((v["state"] for v in body["versions"] if v["version"] == str(version)), None)


def wait_until(what: str, check: Any, timeout: float = 60) -> float:
    """Seconds until ``check()`` is true (polled every 20 ms); fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_sync_leader_killed_while_a_version_arrives(tmp_path: Path, iris_weights: Any, database: str) -> None:
    source = tmp_path / "registry"
    write_config(source / "iris", 'max_batch_size = 16\nversion_policy = { policy = "all" }\n')
    publish(source, 1, iris_weights)
    env = {**SYNC_ENV, "DRIFTLINE_REGISTRY__SOURCE": str(source), "DRIFTLINE_REGISTRY__CACHE_DIR": str(tmp_path / "c")}
    config = write_server_config(tmp_path / "server.toml", f"refresh_interval_s = {REFRESH_S}\n")
    group = start_replicas(tmp_path / "models", tmp_path, database, env=env, args=["--config", str(config)])
    try:
        leaders = [i for i in range(3) if registry_status(group.server(i).url)["leader"]]
        assert len(leaders) == 1, leaders
        leader = leaders[0]
        scrape = httpx.get(f"{group.server(leader).url}/metrics", timeout=5).text
        assert metric(scrape, "driftline_registry_leader", {"source": str(source)}) == 1.0
        others = [i for i in range(3) if i != leader]
        with Load(group.url, "/v2/models/iris/infer", ROWS, max_seconds=120) as load:
            time.sleep(1.0)
            publish(source, 2, iris_weights)
            group.kill(leader)
            killed = time.monotonic()
            wait_until("a new leader", lambda: any(registry_status(group.server(i).url)["leader"] for i in others))
            took_over = time.monotonic() - killed
            new = [i for i in others if registry_status(group.server(i).url)["leader"]]
            assert len(new) == 1, new
            for i in others:
                wait_until(f"version 2 on r{i}", lambda i=i: version_state(group.server(i).url, 2) == "READY")
            loaded = time.monotonic() - killed
            group.start(leader)
            assert group.proxy is not None
            group.proxy.wait_for(f"r{leader}", "UP")
            assert version_state(group.server(leader).url, 2) == "READY"
            answers = load.stop()
        print(f"sync leader kill -9: new leader after {took_over:.3f}s, version 2 ready everywhere after {loaded:.3f}s")
        # A request the killed replica had read but not answered gets no answer at all: HAProxy 2.6 retries an empty
        # response but not a reset one, and on a reused client connection it closes that connection unanswered (the
        # client may retry it); a response cut off mid-way is retried (retry-on junk-response) or, when HAProxy had
        # already begun answering, a 502. So only requests in flight at the kill may fail, at most one per client
        # (half a second either side: HAProxy may still try an idle connection to the dead replica until its next
        # check).
        lost = failures(answers)
        print(f"sync leader kill -9: {len(answers)} answers, {len(lost)} lost with the killed replica")
        assert len(lost) <= Load.THREADS, (lost, group.logs())
        assert all(a.status in (0, 502) and a.start - 0.5 <= killed <= a.end + 0.5 for a in lost), (lost, killed)
        scrape = httpx.get(f"{group.server(new[0]).url}/metrics", timeout=5).text
        assert metric(scrape, "driftline_registry_leader", {"source": str(source)}) == 1.0
        # Placed once: one folder for version 2 (no second copy, no staging folder left), one placement record, and
        # the same artifact loaded by every replica, each on record once (the audit has no separate placement entry).
        digest = hashlib.sha256((source / "iris" / "2" / "model.onnx").read_bytes()).hexdigest()
        model_dir = tmp_path / "models" / "iris"
        folders = sorted(p.name for p in model_dir.iterdir() if p.is_dir() and p.name != ".registry")
        assert folders == ["1", "2"], folders
        assert sorted(p.name for p in (model_dir / ".registry").iterdir()) == ["1.json", "2.json"]
        assert (tmp_path / "c" / digest).exists()
        audit = httpx.get(
            f"{group.server(new[0]).url}/v1/admin/audit?model=iris", headers=HEADERS, timeout=5, params={"limit": 500}
        ).json()
        loads = [e for e in audit if e["action"] == "load" and e["version_after"] == "2"]
        assert {e["sha256"] for e in loads} == {digest}, loads
        synced = [e for e in loads if e["actor"].startswith("registry:")]
        # Both survivors loaded it from the sync (the killed one, had it got there first, once more), and the
        # restarted one at start-up.
        assert 2 <= len(synced) <= 3, loads
        assert len(loads) - len(synced) == 1, loads
        assert not [e for e in audit if e["action"] == "load_failed"], audit
    finally:
        group.close()
