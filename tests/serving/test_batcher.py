"""The asyncio batcher over the Rust queue, with real onnxruntime models and a failing backend."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from driftline.backends import TensorSpec, load_backend
from driftline.errors import InferenceFailed, InferenceTimeout, ModelNotReady, ServerBusy
from driftline.repository import BatchingConfig, ModelConfig
from driftline.repository.demo import build_mlp_onnx
from driftline.serving.batcher import Batcher
from driftline.serving.stats import ModelStats


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mlp") / "model.onnx"
    build_mlp_onnx(path, 32, 64, 2, 4, seed=5)
    return path


class FailingBackend:
    """A real backend object whose model raises on a marked input (row value -1)."""

    platform = "test"
    device = "cpu"
    notes = ()
    inputs = (TensorSpec("x", "FP32", (-1, 2)),)
    outputs = (TensorSpec("y", "FP32", (-1, 2)),)

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def infer(self, inputs):
        self.threads.add(threading.current_thread().name)
        x = inputs["x"]
        self.batches.append(len(x))
        if self.delay:
            time.sleep(self.delay)
        if (x == -1).any():
            raise RuntimeError("poisoned row")
        return {"y": x * 2}

    def close(self) -> None:
        pass


def make(backends, **batching) -> tuple[Batcher, ModelStats]:
    config = ModelConfig(max_batch_size=batching.pop("max_batch_size", 32), batching=BatchingConfig(**batching))
    stats = ModelStats()
    return Batcher("test:1", backends, config, stats, asyncio.get_running_loop()), stats


async def stop(batcher: Batcher) -> None:
    batcher.close()
    await asyncio.to_thread(batcher.join)


async def test_concurrent_requests_equal_direct_inference_and_batch_up(mlp_path: Path):
    backend = load_backend("onnx", mlp_path, ModelConfig())
    batcher, stats = make([backend])
    xs = [np.random.default_rng(i).normal(size=(1 + i % 3, 32)).astype(np.float32) for i in range(60)]
    results = await asyncio.gather(*(batcher.infer({"x": x}, len(x)) for x in xs))
    session = ort.InferenceSession(str(mlp_path))
    for x, out in zip(xs, results, strict=True):
        np.testing.assert_allclose(out["y"], session.run(["y"], {"x": x})[0], rtol=1e-5, atol=1e-6)
    assert stats.success.count == 60
    assert stats.inference_count == sum(len(x) for x in xs)
    # One idle instance: the first request runs alone, the rest pile up behind it and go out together.
    assert max(stats.batch_sizes) > 1
    assert stats.execution_count < 60
    await stop(batcher)


async def test_idle_model_does_not_wait_out_the_delay():
    backend = FailingBackend()
    batcher, _ = make([backend], max_queue_delay_us=2_000_000)
    start = time.perf_counter()
    out = await batcher.infer({"x": np.ones((1, 2), np.float32)}, 1)
    assert time.perf_counter() - start < 1.0  # the 2 s window is never waited when the model is idle
    np.testing.assert_array_equal(out["y"], [[2, 2]])
    await stop(batcher)


async def test_a_failing_batch_fails_only_its_requests():
    backend = FailingBackend()
    batcher, stats = make([backend], max_batch_size=0)
    bad = np.array([[-1, 0]], np.float32)
    with pytest.raises(InferenceFailed, match="poisoned row"):
        await batcher.infer({"x": bad}, 1)
    out = await batcher.infer({"x": np.ones((1, 2), np.float32)}, 1)
    np.testing.assert_array_equal(out["y"], [[2, 2]])
    assert (stats.fail.count, stats.success.count) == (1, 1)
    await stop(batcher)


async def test_full_queue_is_refused_at_once():
    backend = FailingBackend(delay=0.2)
    batcher, _ = make([backend], max_queue_size=1, max_batch_size=1)
    x = np.ones((1, 2), np.float32)
    first = asyncio.ensure_future(batcher.infer({"x": x}, 1))
    await asyncio.sleep(0.05)  # the first is now running, the queue is empty
    second = asyncio.ensure_future(batcher.infer({"x": x}, 1))
    await asyncio.sleep(0)
    with pytest.raises(ServerBusy, match="queue is full"):
        await batcher.infer({"x": x}, 1)
    assert len(await asyncio.gather(first, second)) == 2
    await stop(batcher)


async def test_queue_timeout_fails_with_504_and_never_runs():
    backend = FailingBackend(delay=0.2)
    batcher, stats = make([backend], max_batch_size=1)
    x = np.ones((1, 2), np.float32)
    first = asyncio.ensure_future(batcher.infer({"x": x}, 1))
    await asyncio.sleep(0.05)
    with pytest.raises(InferenceTimeout):
        await batcher.infer({"x": x * 3}, 1, timeout_us=1000)
    await first
    assert backend.batches == [1]  # the expired request was never run
    assert stats.fail.count == 1
    await stop(batcher)


async def test_close_drains_every_accepted_request():
    backend = FailingBackend(delay=0.01)
    batcher, _ = make([backend], max_batch_size=4)
    futures = [asyncio.ensure_future(batcher.infer({"x": np.full((1, 2), i, np.float32)}, 1)) for i in range(20)]
    await asyncio.sleep(0)
    batcher.close()
    results = await asyncio.gather(*futures)
    assert [r["y"][0, 0] for r in results] == [2 * i for i in range(20)]
    with pytest.raises(ModelNotReady):
        await batcher.infer({"x": np.ones((1, 2), np.float32)}, 1)
    await asyncio.to_thread(batcher.join)


async def test_preserve_ordering_across_instances():
    backends = [FailingBackend(delay=0.02), FailingBackend(delay=0.0)]
    batcher, _ = make(backends, max_batch_size=1, preserve_ordering=True)
    done: list[int] = []

    async def one(i: int) -> None:
        await batcher.infer({"x": np.full((1, 2), i, np.float32)}, 1)
        done.append(i)

    await asyncio.gather(*(one(i) for i in range(12)))
    assert done == list(range(12))
    assert sum(len(b.batches) for b in backends) == 12
    await stop(batcher)


async def test_instances_run_in_parallel_threads():
    backends = [FailingBackend(delay=0.05) for _ in range(2)]
    batcher, _ = make(backends, max_batch_size=1)
    await asyncio.gather(*(batcher.infer({"x": np.ones((1, 2), np.float32)}, 1) for _ in range(4)))
    # While one instance sleeps in its batch, the other takes the next: both ran, each on its own thread.
    assert all(b.batches for b in backends)
    assert len(set().union(*(b.threads for b in backends))) == 2
    await stop(batcher)


async def test_idle_fast_model_runs_inline_on_the_loop_and_busy_models_do_not():
    fast = FailingBackend()
    # A generous bound: the measured cost of this microsecond model includes the worker's wake-up, which on two
    # loaded cores (the whole suite running) passed 100 µs once. The slow case below stays far over its bound.
    batcher, stats = make([fast], inline_max_us=5000)
    x = np.ones((1, 2), np.float32)
    for _ in range(5):
        np.testing.assert_array_equal((await batcher.infer({"x": x}, 1, alone=True))["y"], x * 2)
    # The first request measured the model on its worker; the rest ran on the loop thread itself.
    assert fast.threads == {"driftline-test:1-0", threading.current_thread().name}
    assert stats.success.count == 5
    await stop(batcher)

    slow = FailingBackend(delay=0.01)  # 10 ms per batch: far over inline_max_us, never blocks the loop
    batcher, _ = make([slow], inline_max_us=100)
    for _ in range(3):
        await batcher.infer({"x": x}, 1, alone=True)
    assert slow.threads == {"driftline-test:1-0"}
    await stop(batcher)

    off = FailingBackend()
    batcher, _ = make([off], inline_max_us=0)
    for _ in range(3):
        await batcher.infer({"x": x}, 1, alone=True)
    assert off.threads == {"driftline-test:1-0"}
    await stop(batcher)

    crowded = FailingBackend()  # another request in flight: always the queue
    batcher, _ = make([crowded], inline_max_us=100)
    for _ in range(3):
        await batcher.infer({"x": x}, 1, alone=False)
    assert crowded.threads == {"driftline-test:1-0"}
    await stop(batcher)
