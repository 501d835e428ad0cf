"""The batcher's own cost per request: submit to result through the Rust queue, against calling the model directly."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from benchmarks.conftest import FULL

from driftline.backends import TensorSpec
from driftline.repository import BatchingConfig, ModelConfig
from driftline.serving.batcher import Batcher
from driftline.serving.stats import ModelStats

pytestmark = pytest.mark.benchmark

REQUESTS = 2000 if FULL else 200


class NoopBackend:
    """A model that costs nothing, so what is measured is the batcher alone."""

    platform = "noop"
    device = "cpu"
    notes = ()
    inputs = (TensorSpec("x", "FP32", (-1, 4)),)
    outputs = (TensorSpec("x", "FP32", (-1, 4)),)

    def infer(self, inputs):
        return {"x": inputs["x"]}

    def close(self) -> None:
        pass


X = np.ones((1, 4), np.float32)


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def make_batcher(loop: asyncio.AbstractEventLoop, max_batch_size: int = 32) -> Batcher:
    config = ModelConfig(
        max_batch_size=max_batch_size, batching=BatchingConfig(max_queue_delay_us=0, inline_max_us=100)
    )
    return Batcher("noop:1", [NoopBackend()], config, ModelStats(), loop)


def shutdown(loop: asyncio.AbstractEventLoop, batcher: Batcher) -> None:
    batcher.close()
    loop.run_until_complete(asyncio.to_thread(batcher.join))


@pytest.mark.benchmark(group="batcher-overhead")
def test_direct_noop_call(benchmark):
    backend = NoopBackend()

    async def run() -> None:
        for _ in range(REQUESTS):
            backend.infer({"x": X})

    loop = asyncio.new_event_loop()
    try:
        benchmark(lambda: loop.run_until_complete(run()))
    finally:
        loop.close()


@pytest.mark.benchmark(group="batcher-overhead")
def test_batcher_sequential(benchmark, loop):
    """One request at a time through a worker thread: the hand-off a concurrency-1 client pays without inline."""
    batcher = make_batcher(loop)

    async def run() -> None:
        for _ in range(REQUESTS):
            await batcher.infer({"x": X}, 1)

    benchmark(lambda: loop.run_until_complete(run()))
    shutdown(loop, batcher)


@pytest.mark.benchmark(group="batcher-overhead")
def test_batcher_sequential_inline(benchmark, loop):
    """One request at a time, each alone in the process: an idle cheap model runs inline on the loop."""
    batcher = make_batcher(loop)

    async def run() -> None:
        for _ in range(REQUESTS):
            await batcher.infer({"x": X}, 1, alone=True)

    benchmark(lambda: loop.run_until_complete(run()))
    shutdown(loop, batcher)


@pytest.mark.benchmark(group="batcher-overhead")
def test_batcher_concurrent_64(benchmark, loop):
    """64 requests in flight: batches form, the per-request cost drops."""
    batcher = make_batcher(loop)

    async def client(n: int) -> None:
        for _ in range(n):
            await batcher.infer({"x": X}, 1)

    async def run() -> None:
        await asyncio.gather(*(client(REQUESTS // 64 + 1) for _ in range(64)))

    benchmark(lambda: loop.run_until_complete(run()))
    shutdown(loop, batcher)
