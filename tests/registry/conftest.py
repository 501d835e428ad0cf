"""Registry fixtures: one real `mlflow server` per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")
    from tests.mlflow_server import start_mlflow_server

    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()
