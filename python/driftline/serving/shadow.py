"""Shadow traffic: a copy of a request runs on a second version off the response path, and the answers are compared.

The caller never waits for the shadow and never sees its failures: the copy is a task of its own, bounded in number
(when too many are running the copy is dropped and counted), and every exception it raises is counted, not raised.
When the shadow version captures, its answer is captured with arm "shadow" under the primary request's id and
entity, so labels join to both versions' rows and paired tests can compare them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from driftline.serving.signature import check_request
from driftline.store.shadow_stats import ShadowPair

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt

    from driftline.capture.service import CapturePlan, CaptureService
    from driftline.serving.loaded import LoadedModel

__all__ = ["ShadowCapture", "ShadowComparisons", "compare_outputs"]

_log = logging.getLogger("driftline.shadow")
Arrays = dict[str, "npt.NDArray[np.generic]"]
# Shadow copies in flight at once per process; more are dropped rather than queued behind live traffic.
MAX_IN_FLIGHT = 64


class ShadowCapture(NamedTuple):
    """What capturing a shadow's answer takes: the capture service, the shadow version's plan, and the primary
    request's id, entity and arrival (µs since the epoch)."""

    service: CaptureService
    plan: CapturePlan
    request_id: str
    entity: str | None
    arrived_us: int


def compare_outputs(
    primary: Mapping[str, npt.NDArray[np.generic]], shadow: Mapping[str, npt.NDArray[np.generic]]
) -> tuple[int, int, float, int]:
    """Compare two versions' outputs for the same rows.

    A row agrees when every discrete output (integers, booleans, strings) is equal, or, for a model with only
    floating outputs, when the arg-max over the last axis is equal (a class score vector) or the values are close
    (a regression). The mean absolute difference is taken over every floating output both versions share.

    Returns:
        (rows compared, rows agreeing, sum of absolute differences, number of differences summed).
    """
    shared = [n for n in primary if n in shadow and primary[n].shape == shadow[n].shape]
    if not shared:
        return 0, 0, 0.0, 0
    rows = primary[shared[0]].shape[0] if primary[shared[0]].ndim else 1
    agree = np.ones(rows, dtype=bool)
    discrete = [n for n in shared if primary[n].dtype.kind not in "fc"]
    floats = [n for n in shared if primary[n].dtype.kind in "fc"]
    abs_sum, abs_count = 0.0, 0
    for name in floats:
        diff = np.abs(primary[name].astype(np.float64) - shadow[name].astype(np.float64))
        abs_sum += float(diff.sum())
        abs_count += diff.size
    for name in discrete or floats:
        a, b = primary[name], shadow[name]
        if a.ndim == 0:
            same = np.atleast_1d(a == b)
        elif name in floats and a.ndim >= 2 and a.shape[-1] > 1:
            same = (a.argmax(axis=-1) == b.argmax(axis=-1)).reshape(rows, -1).all(axis=1)
        elif name in floats:
            same = np.isclose(a, b, rtol=1e-3, atol=1e-5).reshape(rows, -1).all(axis=1)
        else:
            same = (a == b).reshape(rows, -1).all(axis=1)
        if same.shape[0] != rows:
            return 0, 0, abs_sum, abs_count
        agree &= same
    return rows, int(agree.sum()), abs_sum, abs_count


class ShadowComparisons:
    """Every (model, primary, shadow) pair's running comparison in this process, and the shadow tasks themselves."""

    def __init__(self) -> None:
        """Start with no pairs."""
        self._pairs: dict[tuple[str, int, int], ShadowPair] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # This process's rows in the store: worker processes (and restarts) each add their own, summed on read.
        self.process = uuid.uuid4().hex
        self._dirty: set[tuple[str, int, int]] = set()

    def changed(self) -> list[ShadowPair]:
        """Copies of the pairs that changed since the last call, for the caller to store under :attr:`process`."""
        dirty, self._dirty = self._dirty, set()
        return [copy.copy(self._pairs[k]) for k in sorted(dirty) if k in self._pairs]

    def pair(self, model: str, primary: int, shadow: int) -> ShadowPair:
        """The pair's record (created on first use); marked as changed."""
        key = (model, primary, shadow)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = ShadowPair(model, primary, shadow)
        self._dirty.add(key)
        return pair

    def pairs(self, model: str | None = None) -> list[ShadowPair]:
        """Every pair, or one model's."""
        return [p for k, p in sorted(self._pairs.items()) if model is None or k[0] == model]

    def submit(
        self,
        primary: LoadedModel,
        shadow: LoadedModel,
        inputs: Arrays,
        rows: int,
        primary_outputs: Arrays,
        primary_latency_s: float,
        capture: ShadowCapture | None = None,
    ) -> None:
        """Run a copy of a request on ``shadow`` in the background, its answer captured as ``capture`` says (None:
        not captured); never raises."""
        pair = self.pair(primary.name, primary.version, shadow.version)
        if len(self._tasks) >= MAX_IN_FLIGHT:
            pair.dropped += 1
            return
        pair.requests += 1
        pair.primary_latency_s += primary_latency_s
        task = asyncio.get_running_loop().create_task(self._run(pair, shadow, inputs, rows, primary_outputs, capture))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        pair: ShadowPair,
        shadow: LoadedModel,
        inputs: Arrays,
        rows: int,
        primary: Arrays,
        capture: ShadowCapture | None,
    ) -> None:
        start = time.perf_counter()
        try:
            check_request(shadow, inputs, None)
            outputs = await shadow.batcher.infer(inputs, rows)
        except Exception as exc:  # noqa: BLE001 - a shadow's failure is a number on a dashboard, never the caller's
            pair.shadow_errors += 1
            pair.last_error = f"{type(exc).__name__}: {exc}"
            self._dirty.add((pair.model, pair.primary, pair.shadow))
            return
        latency_s = time.perf_counter() - start
        pair.shadow_latency_s += latency_s
        if capture is not None:  # its own latency: the time it took the shadow to check and answer
            capture.service.take(
                capture.plan,
                (shadow.name, shadow.version, shadow.sha256),
                capture.request_id,
                "shadow",
                (capture.arrived_us, int(latency_s * 1e6)),
                rows,
                inputs,
                outputs,
                capture.entity,
            )
        compared, agreeing, abs_sum, abs_count = compare_outputs(primary, outputs)
        pair.compared_rows += compared
        pair.agreeing_rows += agreeing
        pair.abs_diff_sum += abs_sum
        pair.abs_diff_count += abs_count
        self._dirty.add((pair.model, pair.primary, pair.shadow))

    async def drain(self) -> None:
        """Wait for the shadow copies still running (shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
