"""Shared fixtures: toy models built on the spot with onnx's helper API (and torch when installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import build_test_repository

from driftline.demo import iris_like_data, train_softmax


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
