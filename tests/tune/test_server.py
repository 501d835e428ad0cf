"""TunedServer on a real server: a candidate's config is served, the demo's bodies are accepted, a bad device fails."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from driftline.repository import Repository
from driftline.repository.demo import build_demo_repository
from driftline.tune.bodies import request_bodies
from driftline.tune.server import ServerFailed, TunedServer
from driftline.tune.spec import Candidate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tuned") / "models"
    build_demo_repository(root)
    return root


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def test_candidate_is_served_and_bodies_are_accepted(repo: Path, tmp_path: Path) -> None:
    candidate = Candidate(max_batch_size=16, instances=2, workers=2)
    with TunedServer(repo, "iris", 1, candidate, tmp_path) as server:
        with urllib.request.urlopen(f"{server.url}/v2/models/iris/versions/1/config", timeout=10) as answer:
            config = json.loads(answer.read())
        assert config["max_batch_size"] == 16
        assert config["instance_group"][0]["count"] == 2
        assert len(server.pids()) >= 3  # the supervisor and its two workers
        assert server.cpu_seconds() > 0
        assert server.peak_rss_mib() > 10
        bodies = request_bodies(Repository(repo).model("iris"), "iris", 4, count=3)
        assert [_post(server.url + server.infer_path, b) for b in bodies] == [200, 200, 200]
        # Only the measured version is in the temporary repository.
        assert sorted(p.name for p in (tmp_path / "repository" / "iris").iterdir() if p.is_dir()) == ["1"]
    assert server.pids() == []


def test_a_candidate_that_cannot_load_fails_in_one_line(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ServerFailed) as failed, TunedServer(repo, "iris", 2, Candidate(device="cuda:0"), tmp_path):
        pass
    message = str(failed.value)
    assert "\n" not in message
    assert "cuda:0" in message
    assert "did not load" in message
