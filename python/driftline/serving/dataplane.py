"""The data plane: one inference from a decoded request to the outputs ready to encode, for every front end.

The REST fast path, the Litestar route (and a gRPC front end) do only their transport's part (read the body,
decode it, encode the answer, set the status) and call :meth:`DataPlane.admit` then :meth:`DataPlane.infer`.
Nothing here knows HTTP: the caller's credentials and routing keys come as raw metadata pairs, which is what ASGI
headers and gRPC metadata both are.
"""

from __future__ import annotations

import itertools
import os
import reprlib
import time
from typing import TYPE_CHECKING

from driftline.errors import BadRequest, DriftlineError
from driftline.repository.names import is_version
from driftline.serving.routing import policy_tag
from driftline.serving.shadow import ShadowCapture
from driftline.serving.signature import check_request
from driftline.serving.stats import RequestErrors

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt

    from driftline.capture.service import CaptureService
    from driftline.protocol.codec import DecodedRequest
    from driftline.security.keys import KeyRing
    from driftline.serving.loaded import LoadedModel
    from driftline.serving.routing import RoutingPolicy
    from driftline.serving.table import ModelTable
    from driftline.serving.traffic import Traffic

__all__ = ["DataPlane"]


class DataPlane:
    """Auth for inference, routing, the signature check, priority and timeout, the batcher, shadows, outputs."""

    __slots__ = (
        "_id_prefix",
        "_ids",
        "_tags",
        "capture",
        "errors",
        "in_flight",
        "keys",
        "require_key",
        "table",
        "traffic",
    )

    def __init__(
        self,
        table: ModelTable,
        keys: KeyRing,
        *,
        require_key: bool,
        capture: CaptureService | None = None,
        traffic: Traffic | None = None,
    ) -> None:
        """Serve from ``table``; with ``require_key`` every inference needs a ``predictor`` key from ``keys``;
        answered requests go to ``capture`` when their version captures (None: capture is off everywhere); every
        request that reaches a version's batcher is counted in ``traffic`` (None: not counted)."""
        self.table = table
        self.capture = capture
        self.traffic = traffic
        self.keys = keys
        self.require_key = require_key
        self.errors = RequestErrors()
        # Inference requests a front end is handling right now (counted by the front end, from the first byte of
        # the body): 1 means this request is the only one, so the batcher need not wait for company.
        self.in_flight = 0
        # Generated request ids: this process's random prefix and a counter (unique across replicas and restarts;
        # a syscall per request for fresh randomness cost more than the rest of the capture hook).
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count()
        # Per model, the routing policy last seen and its tag (what traffic counts key on).
        self._tags: dict[str, tuple[RoutingPolicy, int]] = {}

    def admit(self, name: str, metadata: Sequence[tuple[bytes, bytes]]) -> None:
        """What is checked before the request body is looked at: the key, then that the model exists.

        Raises:
            Unauthorized / Forbidden: inference needs a key and this one is missing or has too small a role.
            ModelNotFound / ModelNotReady: an unknown model (404) is refused before any body problem (400).
        """
        if self.require_key:
            self.keys.authenticate(metadata, "predictor")
        self.table.require(name)

    async def infer(
        self, name: str, version: str | None, request: DecodedRequest, metadata: Sequence[tuple[bytes, bytes]]
    ) -> tuple[LoadedModel, dict[str, npt.NDArray[np.generic]]]:
        """Route, check, queue and await one admitted request; returns the version that answered and the outputs
        the request asked for.

        ``version`` is a version number, an alias, or None (the routing policy and the default alias choose).
        When the version captures, a request without an ``id`` is given one (the answer carries it, so the caller
        can send feedback for it). A shadow copy's answer is captured (arm "shadow") when the shadow version
        captures and the request has an id: the same id and entity, so one label labels both versions' rows.
        """
        capture = self.capture
        arrived_ns = 0 if capture is None else time.time_ns()  # capture off everywhere: not even a clock read
        params = request.parameters
        model, shadow = self.table.route(name, version, params, metadata)
        rows = check_request(model, request.inputs, request.outputs)
        plan = shadow_plan = None
        if capture is not None:
            plan = capture.plan(model.name, model.version, model.source, model.lineage)
            if shadow is not None:
                shadow_plan = capture.plan(shadow.name, shadow.version, shadow.source, shadow.lineage)
        entity = request_id = None
        if plan is not None or (shadow_plan is not None and request.id is not None):
            entity = params.get("entity") if params else None
            if entity is not None and type(entity) is not str:
                raise BadRequest(f"parameters.entity must be a string, got {reprlib.repr(entity)}")
        if plan is not None:
            if request.id is None:
                # The answer carries it, so feedback can name this request.
                request.id = f"{self._id_prefix}{next(self._ids):016x}"
            request_id = request.id
        priority = timeout_us = 0
        if params:
            # Only JSON integers: int() would take true as 1 and truncate 0.5; the batcher checks the ranges.
            priority, timeout_us = params.get("priority", 0), params.get("timeout", 0)
            for key, value in (("priority", priority), ("timeout", timeout_us)):
                if type(value) is not int:
                    raise BadRequest(f"parameter {key!r} must be an integer, got {reprlib.repr(value)}")
        traffic = self.traffic
        start = time.perf_counter()
        try:
            outputs = await model.batcher.infer(request.inputs, rows, priority, timeout_us, self.in_flight == 1)
        except Exception as exc:
            # A 400 is the request's own parameters (priority, timeout out of range), not the version failing.
            if traffic is not None and not isinstance(exc, BadRequest):
                status = exc.http_status if isinstance(exc, DriftlineError) else 500
                traffic.record(model.name, model.version, self._policy_tag(name, version), None, status)
            raise
        elapsed = time.perf_counter() - start
        if traffic is not None:
            traffic.record(model.name, model.version, self._policy_tag(name, version), elapsed)
        if shadow is not None:
            taken = None
            if shadow_plan is not None and capture is not None and request.id is not None:
                taken = ShadowCapture(capture, shadow_plan, request.id, entity, arrived_ns // 1000)
            self.table.shadows.submit(model, shadow, request.inputs, rows, outputs, elapsed, taken)
        if request.outputs is not None:
            outputs = {n: outputs[n] for n in request.outputs}
        if plan is not None and capture is not None and request_id is not None:  # all three set together above
            arrived_us = arrived_ns // 1000
            capture.take(
                plan,
                (model.name, model.version, model.sha256),
                request_id,
                self._arm(name, version, model.version),
                (arrived_us, time.time_ns() // 1000 - arrived_us),
                rows,
                request.inputs,
                outputs,
                entity,
            )
        return model, outputs

    def _policy_tag(self, name: str, version: str | None) -> int:
        """The tag of the routing policy that chose this request's version (0 when the request named one); the
        tag is computed once per policy object (policies are swapped whole, so identity tells a change)."""
        if version:
            return 0
        policy = self.table.routes(name).policy
        cached = self._tags.get(name)
        if cached is not None and cached[0] is policy:
            return cached[1]
        tag = policy_tag(policy)
        self._tags[name] = (policy, tag)
        return tag

    def _arm(self, name: str, version: str | None, chosen: int) -> str:
        """How the request reached its version, as capture records it."""
        if version:
            return "pinned" if is_version(version) else "alias"
        routes = self.table.routes(name)
        policy = routes.policy
        if policy.canary is not None and chosen == routes.resolve(policy.canary.target):
            return "canary"
        if policy.split is not None:
            return "split"  # a split sends every keyed request by its weights, the default's share included
        return "default"

    def record_error(self, name: str, version: str | None, status: int) -> None:
        """Count an inference request answered with ``status`` (>= 400) in ``driftline_requests_total``."""
        known, loaded = self.table.knows(name)
        self.errors.record(name if known else None, loaded, version, status)
