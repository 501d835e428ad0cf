"""Triton's protocol extensions: model configuration, statistics and the model repository (index, load, unload)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post

from driftline.errors import BadRequest
from driftline.http.answers import ModelVersions
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import actor, require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, OptionalBody, errors
from driftline.http.triton_shapes import IndexRow, StatisticsAnswer, TritonModelConfig, triton_config

__all__ = ["LoadRequest", "TritonController"]


class LoadRequest(msgspec.Struct):
    """Triton's load request body: ``{"parameters": {...}}``."""

    parameters: dict[str, Any] | None = None


class Unloaded(msgspec.Struct, frozen=True):
    """The model unloaded: every version stopped serving."""

    name: str


def _refuse_overrides(data: LoadRequest | None) -> None:
    """Triton applies ``parameters.config`` (a JSON model config) and ``file:<path>`` contents on load; driftline
    reads config.toml only, so accepting them would answer 200 for a change it never made."""
    params = (data.parameters if data is not None else None) or {}
    unsupported = sorted(k for k in params if k == "config" or k.startswith("file:"))
    if unsupported:
        raise BadRequest(
            f"parameters {', '.join(unsupported)}: config overrides are not supported on load; "
            "edit the model's config.toml in the repository and load again"
        )


def _repository_route(path: str, summary: str, role: str, codes: tuple[int, ...], **extra: Any) -> post:
    """A repository extension route: POST, 200, ``role`` needed once the server has any key (open without, as in
    Triton), and the errors it can answer."""
    return post(
        path,
        summary=summary,
        status_code=200,
        guards=[require_role_when_keyed],
        opt={"role": role},
        security=KEYED_WHEN_CONFIGURED,
        responses=errors(*codes),
        **extra,
    )


class TritonController(Controller):
    """Routes Triton's clients and tools (tritonclient, perf_analyzer) expect beside the core protocol."""

    path = "/v2"
    tags = ["triton extensions"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get(
        ["/models/{name:str}/config", "/models/{name:str}/versions/{version:str}/config"],
        summary="Model config",
        responses=errors(400, 404, 503),
    )
    async def model_config(self, services: ServicesDep, name: str, version: str | None = None) -> TritonModelConfig:
        """The model's configuration in Triton's format."""
        return triton_config(services.table.get(name, version))

    @get(
        ["/models/stats", "/models/{name:str}/stats", "/models/{name:str}/versions/{version:str}/stats"],
        summary="Statistics",
        responses=errors(400, 404, 503),
    )
    async def stats(
        self, services: ServicesDep, name: str | None = None, version: str | None = None
    ) -> StatisticsAnswer:
        """Triton's statistics extension: per model version success/fail/queue/compute counters and batch stats."""
        table = services.table
        loaded = table.loaded()
        if name is None:
            models = [m for versions in loaded.values() for m in versions.values()]
        elif version is None:
            if name not in loaded:
                table.get(name)  # raises the right 404/503
            models = list(loaded[name].values())
        else:
            models = [table.get(name, version)]
        entries = [m.stats.as_triton(m.name, str(m.version)) for m in models]
        if services.workers is not None:  # several worker processes: every one's figures, summed
            entries = await services.workers.triton_stats(entries)
        return msgspec.convert({"model_stats": entries}, StatisticsAnswer)

    # A read (a viewer key), though Triton makes it a POST.
    @_repository_route("/repository/index", "Repository index", "viewer", (400, 401, 403, 413))
    async def index(self, request: Request[Any, Any, Any], services: ServicesDep) -> list[IndexRow]:
        """Every model in the repository with its state; body ``{"ready": true}`` lists only ready ones.

        Needs a viewer key once the server has any key, like the other reads keys guard.
        """
        body = await request.body()
        ready_only = False
        if body.strip():
            data = await request.json()
            ready_only = bool(isinstance(data, dict) and data.get("ready"))
        rows = [r for r in services.table.index() if r["state"] == "READY" or not ready_only]
        return msgspec.convert(rows, list[IndexRow])

    @_repository_route(
        "/repository/models/{name:str}/load",
        "Load a model",
        "operator",
        (400, 401, 403, 404, 409, 413, 503),
        operation_class=OptionalBody,
    )
    async def load(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, data: LoadRequest | None = None
    ) -> ModelVersions:
        """(Re)load a model from the repository; the old versions serve until the new ones are ready.

        Needs an operator key once the server has any key (without keys it is open, as in Triton). Triton's
        ``parameters.config`` (and ``file:`` overrides) are refused: the model's config comes from its folder only.
        """
        _refuse_overrides(data)
        services.table.repository.require(name)
        versions = await services.table.load(name, actor=actor(request))
        await services.lifecycle.follow_store()
        return ModelVersions(name=name, versions=[str(v) for v in versions])

    @_repository_route(
        "/repository/models/{name:str}/unload", "Unload a model", "operator", (400, 401, 403, 404, 409, 503)
    )
    async def unload(self, request: Request[Any, Any, Any], services: ServicesDep, name: str) -> Unloaded:
        """Stop serving a model after answering every request already queued (an operator key, as for load)."""
        await services.table.unload(name, actor=actor(request))
        return Unloaded(name=name)
