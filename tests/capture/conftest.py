"""Fixtures of the capture tests: a real SQLite store, its segment index and a capture root in tmp_path."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from driftline.capture.rows import CaptureBatch
from driftline.store.captures import CaptureIndex
from driftline.store.db import Database, open_database

DAY_US = 86_400 * 1_000_000


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path / "driftline.db")
    yield database
    database.close()


@pytest.fixture
def index(db: Database) -> CaptureIndex:
    return CaptureIndex(db)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "captures"


def batch(
    request_id: str,
    rows: int = 2,
    *,
    model: str = "iris",
    version: int = 1,
    ts_us: int | None = None,
    entity: str | None = None,
    seed: int = 0,
) -> CaptureBatch:
    """A request of ``rows`` rows: a 4-wide float input and a label and probabilities output."""
    rng = np.random.default_rng(seed)
    return CaptureBatch(
        model=model,
        version=version,
        sha256="ab" * 32,
        request_id=request_id,
        arm="alias",
        ts_us=time.time_ns() // 1000 if ts_us is None else ts_us,
        latency_us=1234,
        rows=rows,
        inputs={"x": rng.normal(size=(rows, 4)).astype(np.float32)},
        outputs={"label": rng.integers(0, 3, size=rows), "probabilities": rng.random((rows, 3))},
        entity=entity,
    )
