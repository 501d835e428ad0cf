"""A trace from real captured requests: a server with capture on, a few requests, then their arrivals and sizes."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from driftline.config import load_settings
from driftline.errors import ConfigError
from driftline.repository import Repository
from driftline.repository.demo import build_demo_repository
from driftline.tune.bodies import request_bodies
from driftline.tune.server import TunedServer
from driftline.tune.spec import Candidate
from driftline.tune.trace import load_trace

pytestmark = pytest.mark.e2e


def test_trace_of_captured_requests(tmp_path: Path) -> None:
    build_demo_repository(tmp_path / "models")
    conf = tmp_path / "server.toml"
    conf.write_text("[capture]\nenabled = true\n")
    work = tmp_path / "work"
    work.mkdir()
    bodies = request_bodies(Repository(tmp_path / "models").model("iris"), "iris", 1, rows=[1, 3, 2])
    with TunedServer(tmp_path / "models", "iris", 2, Candidate(), work, conf) as server:
        for body in bodies:
            request = urllib.request.Request(server.url + server.infer_path, data=body)
            urllib.request.urlopen(request, timeout=10).close()
            time.sleep(0.05)
    settings = load_settings(
        None, {"database": str(work / "driftline.db"), "capture": {"directory": str(work / "captures")}}, environ={}
    )
    trace = load_trace(settings, "iris", 2)
    assert trace.rows.tolist() == [1, 3, 2]
    assert trace.arrivals[0] == 0
    assert all(b > a for a, b in zip(trace.arrivals, trace.arrivals[1:], strict=False))
    with pytest.raises(ConfigError, match="model 'iris' has no captured requests"):
        load_trace(settings, "iris", 1)
