"""Capture as a running server holds it: the writer, the index, the reader, and each loaded version's settings.

The data plane asks :meth:`CaptureService.plan` once per request (a dict lookup; the settings of a version are
worked out when it is first seen) and hands the kept tensors to :meth:`CaptureService.take`, which queues them
(every 256th request converts the chunk to Arrow, about a millisecond).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.capture.reader import CaptureReader
from driftline.capture.retention import enforce_retention, erase_entity
from driftline.capture.rows import keep_tensors
from driftline.capture.sampling import should_capture
from driftline.capture.writer import CaptureWriter

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from numpy.typing import NDArray

    from driftline.capture.writer import CaptureFigures
    from driftline.config import CaptureSettings
    from driftline.repository.layout import ModelSource
    from driftline.repository.lineage import Lineage
    from driftline.repository.model_config import CaptureOverrides
    from driftline.store.captures import CaptureIndex

__all__ = ["CapturePlan", "CaptureService"]

_log = logging.getLogger("driftline.capture")


@dataclass(frozen=True, slots=True)
class CapturePlan:
    """What one loaded version captures: its effective settings reduced to what a request needs."""

    rate: float
    inputs: frozenset[str] | None
    outputs: frozenset[str] | None
    exclude: frozenset[str]


def plan_of(settings: CaptureSettings) -> CapturePlan | None:
    """The plan for these effective settings; None when they capture nothing."""
    if not settings.enabled or settings.sample_rate <= 0.0:
        return None
    return CapturePlan(
        rate=settings.sample_rate,
        inputs=None if settings.inputs is None else frozenset(settings.inputs),
        outputs=None if settings.outputs is None else frozenset(settings.outputs),
        exclude=frozenset(settings.exclude),
    )


class CaptureService:
    """One server's capture: rows to ``root`` through one writer, segments listed in ``index``."""

    def __init__(self, root: Path, index: CaptureIndex, default: CaptureSettings) -> None:
        """Reconcile the index with the files (a crash may have left either behind), then start the writer."""
        self.root = root
        self.index = index
        self.default = default
        try:
            fixed = index.reconcile(root)
        except OSError as exc:  # an unreadable directory: the writer fails on its first write and says why
            _log.error("capture: cannot reconcile %s with its index: %s", root, exc)
        else:
            _log.info("capture: writing below %s (%s)", root, fixed)
        self.writer = CaptureWriter(
            root,
            index,
            queue_rows=default.queue_rows,
            segment_rows=default.segment_rows,
            segment_seconds=default.segment_seconds,
        )
        self.reader = CaptureReader(root, index)
        # (model, version) -> (the source its plan was made from, the plan): a reload brings a new source.
        self._plans: dict[tuple[str, int], tuple[ModelSource, CapturePlan | None]] = {}

    def plan(self, name: str, version: int, source: ModelSource, lineage: Lineage | None = None) -> CapturePlan | None:
        """The plan of a loaded version (None: it captures nothing); worked out once per loaded source, when the
        version's ``lineage`` is handed to the writer for its segments."""
        cached = self._plans.get((name, version))
        if cached is not None and cached[0] is source:
            return cached[1]
        plan = plan_of(source.config.capture.over(self.default))
        if plan is not None and lineage is not None:
            self.writer.describe(name, version, msgspec.json.encode(lineage))
        self._plans[(name, version)] = (source, plan)
        return plan

    def take(
        self,
        plan: CapturePlan,
        model: tuple[str, int, str],
        request_id: str,
        arm: str,
        times_us: tuple[int, int],
        rows: int,
        inputs: Mapping[str, NDArray[Any]],
        outputs: Mapping[str, NDArray[Any]],
        entity: str | None,
    ) -> None:
        """Queue one answered request's rows when its id is sampled; never waits on the writer, never raises.

        ``model`` is (name, version, artifact sha256); ``times_us`` is (arrival since the epoch, latency).
        """
        if plan.rate < 1.0 and not should_capture(request_id, plan.rate):
            return
        # The request's own mappings, not copies, unless the plan leaves tensors out (nothing changes them later).
        if plan.inputs is not None or plan.exclude:
            inputs = keep_tensors(inputs, plan.inputs, plan.exclude)
        if plan.outputs is not None:
            outputs = keep_tensors(outputs, plan.outputs)
        name, version, sha256 = model
        arrived_us, latency_us = times_us
        # CaptureBatch's fields as a tuple: a frozen dataclass per request cost more than the rest of this hook.
        self.writer.put((name, version, sha256, request_id, arm, arrived_us, latency_us, rows, inputs, outputs, entity))

    def figures(self) -> CaptureFigures:
        """The writer's counters."""
        return self.writer.figures()

    def erase(self, entity: str) -> tuple[int, set[tuple[str, str]]]:
        """Remove every captured row of ``entity`` (rows still queued are written first); returns how many, and the
        (model, request id) of the requests they came from.

        Raises:
            OSError: a segment could not be rewritten (the erasure can be run again).
        """
        self.writer.flush()
        requests: set[tuple[str, str]] = set()
        return erase_entity(self.root, self.index, entity, requests), requests

    def retain(self, own: Mapping[str, CaptureOverrides]) -> int:
        """Apply each captured model's retention (its ``[capture]`` in ``own`` over the server's default, else the
        default); returns the segments deleted."""
        deleted = 0
        for name in sorted({s.model for s in self.index.segments()}):
            settings = own[name].over(self.default) if name in own else self.default
            deleted += enforce_retention(
                self.root, self.index, max_age_s=settings.max_age_s, max_bytes=settings.max_bytes, model=name
            )
        return deleted

    def close(self) -> None:
        """Write what is queued (bounded) and stop the writer."""
        if not self.writer.close():
            _log.warning("capture: the writer did not finish within its close timeout; queued rows are lost")
