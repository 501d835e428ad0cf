"""Fixtures for the protocol tests."""

from __future__ import annotations

import pytest
from tests.protocol.oip_wire import SAMPLES


@pytest.fixture(params=sorted(SAMPLES))
def datatype(request: pytest.FixtureRequest) -> str:
    """Every datatype numpy holds natively."""
    return str(request.param)
