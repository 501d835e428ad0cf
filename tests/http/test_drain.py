"""http/drain.py with real signals sent to this process: the first one drains and reaches the server's handler only
after the delay, a repeat within a second is the same stop, a later one cuts the delay short."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

import pytest

from driftline.http.drain import drain_on_signal
from driftline.server.drain import Drain

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

STOPS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture
def heard() -> Iterator[list[int]]:
    """A stand-in for the server's own handler (uvicorn's handle_exit): records what reached it."""
    got: list[int] = []

    def server_handler(sig: int, frame: FrameType | None) -> None:
        got.append(sig)

    old = {sig: signal.signal(sig, server_handler) for sig in STOPS}
    yield got
    for sig, handler in old.items():
        signal.signal(sig, handler)


async def until(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.01)


async def test_the_first_signal_drains_and_the_server_hears_it_after_the_delay(heard: list[int]):
    drain = Drain()
    installed = signal.getsignal(signal.SIGTERM)
    async with drain_on_signal(drain, 0.5):
        start = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0)
        assert drain.draining
        assert "draining after SIGTERM: shutting down in" in drain.reason()
        os.kill(os.getpid(), signal.SIGINT)  # within the repeat window: the same stop (a group's Ctrl-C, forwarded)
        await asyncio.sleep(0.1)
        assert heard == []  # still serving
        await until(lambda: heard, 5)
        assert heard == [signal.SIGTERM]
        assert time.monotonic() - start >= 0.5
        os.kill(os.getpid(), signal.SIGINT)  # after the hand-over: straight to the server (uvicorn: force quit)
        await asyncio.sleep(0)
        assert heard == [signal.SIGTERM, signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) == installed  # the server's handler is back


async def test_a_second_signal_a_second_later_cuts_the_delay_short(heard: list[int]):
    drain = Drain()
    async with drain_on_signal(drain, 60):
        start = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(1.1)
        assert heard == []
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: heard, 5)
        assert heard == [signal.SIGTERM]
        assert time.monotonic() - start < 5


def test_nothing_is_installed_without_a_delay_or_off_the_main_thread(heard: list[int]):
    installed = signal.getsignal(signal.SIGTERM)

    async def inside(delay: float) -> object:
        async with drain_on_signal(Drain(), delay):
            return signal.getsignal(signal.SIGTERM)

    assert asyncio.run(inside(0)) == installed
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(asyncio.run(inside(5))))
    thread.start()
    thread.join(10)
    assert seen == [installed]  # a test client's portal thread: signal.signal would raise there
    assert asyncio.run(inside(5)) != installed


def test_an_idle_drain_says_nothing():
    drain = Drain()
    assert not drain.draining
    assert drain.reason() == ""
