"""``POST /v1/models/{name}/feedback``: ground-truth labels of captured predictions, by request id or by entity."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.openapi.spec import Operation

from driftline.feedback import parse_feedback
from driftline.feedback.body import WireFeedback
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, errors, one_or_many
from driftline.store.feedback import PutCounts  # noqa: TC001 - Litestar reads handler annotations at run time

if TYPE_CHECKING:
    from driftline.repository.model_config import QualityConfig
    from driftline.server.services import Services
    from driftline.store.feedback import Feedback

__all__ = ["FeedbackController", "FeedbackTerms"]


class FeedbackTerms(msgspec.Struct, frozen=True):
    """What a model's feedback must be: the task its targets are checked against, and the most labels a request
    may carry (``driftline feedback upload`` checks a file by them and sends it in batches of that size)."""

    model: str
    task: Literal["classification", "regression"]
    max_items: int


@dataclass
class FeedbackOperation(Operation):
    """The feedback route reads its body itself (404 and 409 come before it): document the body it takes."""

    def __post_init__(self) -> None:
        """One label, or ``{"feedback": [...]}`` of them."""
        self.request_body = one_or_many(
            WireFeedback, "feedback", "One label, or up to feedback.max_items of them in a list"
        )


async def _quality(services: Services, name: str) -> QualityConfig:
    """The model's ``[quality]``: 404 for an unknown model, 409 for one without the table."""
    return await asyncio.to_thread(services.quality.config, name)


class FeedbackController(Controller):
    """Labels that arrive after the prediction; they are joined to captured rows whenever both exist."""

    path = "/v1/models"
    tags = ["feedback"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012
    security = KEYED_WHEN_CONFIGURED

    @get("/{name:str}/feedback", summary="What feedback a model takes", responses=errors(400, 401, 403, 404, 409))
    async def terms(self, services: ServicesDep, name: str) -> FeedbackTerms:
        """The model's task (from ``[quality]``) and the server's ``feedback.max_items``."""
        quality = await _quality(services, name)
        return FeedbackTerms(model=name, task=quality.task, max_items=services.settings.feedback.max_items)

    @post(
        "/{name:str}/feedback",
        status_code=200,
        summary="Post ground-truth labels",
        responses=errors(400, 401, 403, 404, 409, 413),
        # Labels are data written into the store: once the server has keys, a predictor's key or above.
        opt={"role": "predictor"},
        operation_class=FeedbackOperation,
    )
    async def post_feedback(self, request: Request[Any, Any, Any], services: ServicesDep, name: str) -> PutCounts:
        """Store one label (``{"id": ..., "row": 0, "target": ...}`` or ``{"entity": ..., "target": ...}``) or
        ``{"feedback": [...]}`` of them, all or none; the same key again replaces its label and counts once.

        The model is looked up before the body is read, so an unknown model is a 404 whatever the body holds. A
        model without ``[quality]`` in its config.toml is a 409: the target's type cannot be checked. ``unmatched``
        counts the labels that name no captured row as of now (rows still queued for writing are not yet seen).
        """
        quality = await _quality(services, name)
        body = await request.body()
        items = parse_feedback(body, services.settings.feedback.max_items, quality.task)
        return await asyncio.to_thread(_put, services, name, items)


def _put(services: Services, name: str, items: list[Feedback]) -> PutCounts:
    """Store the labels, then count those that name no captured row as of now (after: a failed put counts none)."""
    counts = services.feedback.put(name, items)
    return msgspec.structs.replace(counts, unmatched=services.quality.unmatched(name, items))
