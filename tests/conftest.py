"""Shared fixtures: toy models built on the spot with onnx's helper API (and torch when installed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from tests.helpers import build_test_repository

from driftline.repository.demo import iris_like_data, train_softmax

# Hypothesis profiles for every property test: `fast` (the default, derandomized so a run is reproducible) and
# `slow` (more random examples, for a nightly run). Chosen by HYPOTHESIS_PROFILE, not a DRIFTLINE_* variable: the
# server's settings loader rejects unknown DRIFTLINE_* names, so one set for tests would break every e2e server.
PROFILE_ENV = "HYPOTHESIS_PROFILE"
settings.register_profile("fast", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("slow", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get(PROFILE_ENV, "fast"))


@pytest.fixture(scope="session")
def iris_weights():
    x, y = iris_like_data(300, seed=3)
    return train_softmax(x, y, classes=3, epochs=100)


@pytest.fixture
def repo(tmp_path: Path, iris_weights) -> Path:
    return build_test_repository(tmp_path / "models", iris_weights)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real `mlflow server` (SQLite backend, local artifact root) on 127.0.0.1 per test session."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")
    from tests.mlflow_server import start_mlflow_server

    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server per test process (tests/postgres.py); ``postgres.new_database()`` returns the
    ``postgresql://...`` URL of a fresh empty database. Skips when PostgreSQL is missing (fails under CI=true)."""
    from tests.postgres import start_postgres

    server = start_postgres()
    yield server
    server.stop()
