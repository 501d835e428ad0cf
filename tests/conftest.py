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
