"""The asyncio face of ``_core.BatchQueue``: requests in, futures out, one worker thread per model instance.

Rust decides when a batch is sent and which requests it holds; Python keeps the arrays and futures. Workers block in
``next_batch`` with the GIL released, gather the batch's inputs once, run the backend, split the outputs by row offset
and resolve the whole batch with a single ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np

from driftline._core import BatchQueue, QueueClosed, QueueFull
from driftline.errors import BadRequest, InferenceFailed, InferenceTimeout, ModelNotReady, ServerBusy

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy.typing as npt

    from driftline._core import Batch
    from driftline.backends.base import Backend
    from driftline.repository.model_config import ModelConfig
    from driftline.serving.stats import ModelStats

__all__ = ["MAX_TIMEOUT_US", "Arrays", "Batcher"]

Arrays = dict[str, "npt.NDArray[np.generic]"]
#: The largest request ``parameters.timeout``, one day in microseconds: far inside what the Rust queue takes (u64,
#: added to its clock), and past any queue wait a client could mean.
MAX_TIMEOUT_US: Final = 86_400_000_000
_log = logging.getLogger("driftline.serving")


class _Pending(NamedTuple):
    inputs: Arrays
    future: asyncio.Future[Arrays]
    submitted_ns: int


class _Outcome(NamedTuple):
    """What a worker hands to the event loop for one batch."""

    entries: list[_Pending]
    results: list[Arrays] | BaseException
    queue_us: Sequence[int]
    expired: list[_Pending]
    timings: tuple[int, int, int, int] | None  # rows, input ns, infer ns, output ns


class Batcher:
    """Queues requests for one model version and runs them on its instances."""

    def __init__(
        self,
        label: str,
        backends: list[Backend],
        config: ModelConfig,
        stats: ModelStats,
        loop: asyncio.AbstractEventLoop,
        on_batch: Callable[[Arrays, Arrays], None] | None = None,
    ) -> None:
        """Create the queue and start one worker thread per backend instance.

        Args:
            label: ``model:version``, for messages and thread names.
            backends: one loaded instance per worker.
            config: the model's config (batching settings).
            stats: counters this batcher updates (on the loop thread).
            loop: the event loop whose futures the workers resolve.
            on_batch: called from the worker with each successful batch's inputs and outputs (drift, logging);
                it must be quick and must not raise.
        """
        b = config.batching
        self.label = label
        self.batching = config.max_batch_size > 0
        self._stats = stats
        self._loop = loop
        self._on_batch = on_batch
        self._input_names = [t.name for t in backends[0].inputs]
        self._priority_levels = b.priority_levels
        self._queue = BatchQueue(
            config.max_batch_size,
            preferred_batch_sizes=list(b.preferred_batch_sizes),
            max_queue_delay_us=b.max_queue_delay_us,
            max_queue_size=b.max_queue_size,
            priority_levels=b.priority_levels,
            default_priority_level=b.default_priority_level,
            default_timeout_us=b.default_timeout_us,
        )
        self._pending: dict[int, _Pending] = {}
        # Guards `submit + store` against a worker popping the ticket in between.
        self._lock = threading.Lock()
        self._ordered = b.preserve_ordering and len(backends) > 1
        # Inline execution would overtake results still on their way to the loop, so ordering turns it off.
        self._inline_max_ns = 0 if b.preserve_ordering else b.inline_max_us * 1000
        self._inline_backend = backends[0]
        self._infer_ns: float | None = None  # moving average of batch compute time, kept on the loop thread
        self._next_seq = 0
        self._held: dict[int, _Outcome] = {}
        self._threads = [
            threading.Thread(target=self._work, args=(backend,), name=f"driftline-{label}-{i}", daemon=True)
            for i, backend in enumerate(backends)
        ]
        for thread in self._threads:
            thread.start()

    def stats(self) -> dict[str, int]:
        """The Rust queue's counters (queued requests, busy instances, ...)."""
        return self._queue.stats()

    async def infer(
        self, inputs: Arrays, rows: int, priority: int = 0, timeout_us: int = 0, alone: bool = False
    ) -> Arrays:
        """Queue one request and wait for its outputs.

        ``alone`` says the caller knows of no other request in flight in this process: then an idle, cheap model
        runs the request on the loop thread at once instead of handing it to a worker.

        Raises:
            ServerBusy: the queue is full (503).
            ModelNotReady: the model is being unloaded (503).
            InferenceTimeout: the request expired in the queue (504).
            InferenceFailed: the backend raised on its batch (500).
            BadRequest: ``priority`` is outside 0..priority_levels or ``timeout_us`` outside 0..MAX_TIMEOUT_US (400).
        """
        if not 0 <= priority <= self._priority_levels:
            raise BadRequest(
                f"parameter 'priority' must be within 0..{self._priority_levels} for model {self.label} "
                f"(1 is the highest level, 0 the default), got {priority}"
            )
        if not 0 <= timeout_us <= MAX_TIMEOUT_US:
            raise BadRequest(f"parameter 'timeout' must be within 0..{MAX_TIMEOUT_US} microseconds, got {timeout_us}")
        # Inline only for a lone request on a cheap, idle model: with company, the queue batches and the worker
        # thread uses the other core while the loop goes on with HTTP (measured: inline at concurrency 64 lost 30%).
        cost = self._infer_ns
        if alone and self._inline_max_ns and cost is not None and cost <= self._inline_max_ns and self._queue.idle():
            # No lock needed: only this loop thread submits, so while it runs the model no worker gets work.
            return self._infer_inline(inputs, rows)
        future: asyncio.Future[Arrays] = self._loop.create_future()
        # Requests of different non-batch shapes are never batched together.
        shape_key = hash(tuple(a.shape[1:] for a in inputs.values())) & 0x7FFF_FFFF_FFFF_FFFF if self.batching else 0
        with self._lock:
            try:
                ticket = self._queue.submit(rows if self.batching else 1, priority, timeout_us, shape_key)
            except QueueFull:
                raise ServerBusy(f"model {self.label}: queue is full, retry later") from None
            except QueueClosed:
                raise ModelNotReady(f"model {self.label} is unloading") from None
            self._pending[ticket] = _Pending(inputs, future, time.perf_counter_ns())
        try:
            return await future
        except asyncio.CancelledError:
            if self._queue.cancel(ticket):
                with self._lock:
                    self._pending.pop(ticket, None)
            raise

    def _infer_inline(self, inputs: Arrays, rows: int) -> Arrays:
        start = time.perf_counter_ns()
        try:
            outputs = self._inline_backend.infer(inputs)
        except Exception as exc:  # noqa: BLE001 - a model error fails this request only
            self._stats.record_request(False, time.perf_counter_ns() - start, 0)
            raise InferenceFailed(f"model {self.label}: inference failed: {exc}") from None
        elapsed = time.perf_counter_ns() - start
        self._observe(elapsed)
        self._stats.record_batch(rows, 1, 0, elapsed, 0)
        self._stats.record_request(True, elapsed, 0)
        if self._on_batch is not None:
            self._on_batch(inputs, outputs)
        return outputs

    def _observe(self, infer_ns: int) -> None:
        previous = self._infer_ns
        self._infer_ns = infer_ns if previous is None else 0.8 * previous + 0.2 * infer_ns

    def close(self) -> None:
        """Stop accepting requests; workers drain what is queued, then exit."""
        self._queue.close()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the workers to drain and exit (call from a thread, never the loop)."""
        for thread in self._threads:
            thread.join(timeout)

    # -- worker side ---------------------------------------------------------------------------------------------

    def _work(self, backend: Backend) -> None:
        queue = self._queue
        while True:
            batch = queue.next_batch()
            if batch is None:
                return
            with self._lock:
                entries = [self._pending.pop(t) for t in batch.tickets]
                expired = [p for p in (self._pending.pop(t, None) for t in batch.expired) if p is not None]
            try:
                outcome = self._run(backend, batch, entries, expired)
            except BaseException as exc:  # noqa: BLE001 - never lose a batch's futures, whatever happened
                _log.exception("model %s: worker failed on a batch", self.label)
                err = InferenceFailed(f"model {self.label}: internal error while running a batch: {exc!r}")
                outcome = _Outcome(entries, err, [], expired, None)
            finally:
                queue.task_done()
            self._deliver(batch.seq, outcome)

    def _run(self, backend: Backend, batch: Batch, entries: list[_Pending], expired: list[_Pending]) -> _Outcome:
        t0 = time.perf_counter_ns()
        if not entries:
            return _Outcome([], [], [], expired, None)
        if len(entries) == 1:
            inputs = entries[0].inputs
        else:
            inputs = {n: np.concatenate([e.inputs[n] for e in entries]) for n in self._input_names}
        t1 = time.perf_counter_ns()
        try:
            outputs = backend.infer(inputs)
        except Exception as exc:  # noqa: BLE001 - a model error fails this batch only
            _log.warning("model %s: inference failed: %s", self.label, exc)
            return _Outcome(entries, InferenceFailed(f"model {self.label}: inference failed: {exc}"), [], expired, None)
        t2 = time.perf_counter_ns()
        if len(entries) == 1:
            results = [outputs]
        else:
            offsets = batch.offsets
            bad = [n for n, v in outputs.items() if v.ndim == 0 or v.shape[0] != batch.rows]
            if bad:
                err = InferenceFailed(f"model {self.label}: outputs {bad} do not have the batch's {batch.rows} rows")
                return _Outcome(entries, err, [], expired, None)
            results = [{n: v[offsets[i] : offsets[i + 1]] for n, v in outputs.items()} for i in range(len(entries))]
        t3 = time.perf_counter_ns()
        if self._on_batch is not None:
            self._on_batch(inputs, outputs)
        return _Outcome(entries, results, batch.queue_us, expired, (batch.rows, t1 - t0, t2 - t1, t3 - t2))

    def _deliver(self, seq: int, outcome: _Outcome) -> None:
        if not self._ordered:
            self._loop.call_soon_threadsafe(self._resolve, outcome)
            return
        # preserve_ordering: release batches to the loop strictly in sequence order.
        with self._lock:
            self._held[seq] = outcome
            ready = []
            while self._next_seq in self._held:
                ready.append(self._held.pop(self._next_seq))
                self._next_seq += 1
        for item in ready:
            self._loop.call_soon_threadsafe(self._resolve, item)

    def _resolve(self, outcome: _Outcome) -> None:
        """Runs on the event loop: settle every future of one batch; futures already done are skipped."""
        stats = self._stats
        now = time.perf_counter_ns()
        for pending in outcome.expired:
            if not pending.future.done():
                pending.future.set_exception(
                    InferenceTimeout(f"model {self.label}: request timed out in the queue before it could run")
                )
            stats.record_request(False, now - pending.submitted_ns, 0)
        results = outcome.results
        if isinstance(results, BaseException):
            for pending in outcome.entries:
                if not pending.future.done():
                    pending.future.set_exception(results)
                stats.record_request(False, now - pending.submitted_ns, 0)
            return
        if outcome.timings is not None:
            rows, input_ns, infer_ns, output_ns = outcome.timings
            stats.record_batch(rows, len(outcome.entries), input_ns, infer_ns, output_ns)
            self._observe(infer_ns)
        for pending, result, queue_us in zip(outcome.entries, results, outcome.queue_us, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
            stats.record_request(True, now - pending.submitted_ns, queue_us * 1000)
