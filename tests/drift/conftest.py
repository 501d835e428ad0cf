"""Shared data for the drift package tests: small, seeded, milliseconds to build."""

import numpy as np
import polars as pl
import pytest

CITIES = ["paris", "lyon", "nice"]


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def frames(rng):
    """A 600-row reference and a shifted 400-row current frame: 2 numeric, 1 string, 1 binary, 1 low-card."""

    def make(n, shift):
        return pl.DataFrame(
            {
                "age": rng.normal(40 + 8 * shift, 10, n),
                "income": rng.lognormal(10, 0.5, n),
                "city": rng.choice(CITIES, n, p=[0.5 - 0.3 * shift, 0.3, 0.2 + 0.3 * shift]),
                "member": rng.random(n) < 0.3 + 0.4 * shift,
                "rooms": rng.integers(1, 4 + shift, n).astype(np.float64),
            }
        )

    return make(600, 0), make(400, 1)
