"""Triton's protocol extensions: model configuration, statistics and the model repository (index, load, unload)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Controller, Request, get, post

from driftline.errors import BadRequest, ModelNotFound
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, OptionalBody, errors

if TYPE_CHECKING:
    from driftline.backends.base import TensorSpec
    from driftline.serving.loaded import LoadedModel

__all__ = ["LoadRequest", "TritonController", "triton_config"]


def _tensor(spec: TensorSpec, batching: bool) -> dict[str, Any]:
    # Triton's dims leave out the batch dimension when the model batches.
    dims = list(spec.shape[1:] if batching else spec.shape)
    return {
        "name": spec.name,
        "data_type": f"TYPE_{'STRING' if spec.datatype == 'BYTES' else spec.datatype}",
        "dims": dims,
    }


def triton_config(model: LoadedModel) -> dict[str, Any]:
    """The model's configuration in Triton's JSON form (what perf_analyzer reads before it starts)."""
    config = model.source.config
    batching = config.max_batch_size > 0
    b = config.batching
    backend = model.backends[0]
    out: dict[str, Any] = {
        "name": model.name,
        "platform": backend.platform,
        "backend": "onnxruntime" if backend.platform.startswith("onnx") else "pytorch",
        "max_batch_size": config.max_batch_size,
        "input": [_tensor(t, batching) for t in model.inputs],
        "output": [_tensor(t, batching) for t in model.outputs],
        "instance_group": [
            {
                "name": f"{model.name}_0",
                "count": config.instances,
                "kind": "KIND_GPU" if backend.device.startswith("cuda") else "KIND_CPU",
                **({"gpus": [int(backend.device.partition(":")[2] or 0)]} if backend.device.startswith("cuda") else {}),
            }
        ],
        "version_policy": {config.version_policy.policy: _policy_body(model)},
        "parameters": {
            "device": {"string_value": backend.device},
            "notes": {"string_value": "; ".join([*backend.notes, *model.source.notes])},
        },
    }
    if batching:
        out["dynamic_batching"] = {
            "preferred_batch_size": list(b.preferred_batch_sizes),
            "max_queue_delay_microseconds": b.max_queue_delay_us,
            "preserve_ordering": b.preserve_ordering,
            "priority_levels": b.priority_levels,
            "default_priority_level": b.default_priority_level,
            "default_queue_policy": {
                "max_queue_size": b.max_queue_size,
                "default_timeout_microseconds": b.default_timeout_us,
                "timeout_action": "REJECT",
            },
        }
    return out


class LoadRequest(msgspec.Struct):
    """Triton's load request body: ``{"parameters": {...}}``."""

    parameters: dict[str, Any] | None = None


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


def _policy_body(model: LoadedModel) -> dict[str, Any]:
    policy = model.source.config.version_policy
    if policy.policy == "latest":
        return {"num_versions": policy.latest}
    if policy.policy == "specific":
        return {"versions": list(policy.versions)}
    return {}


class TritonController(Controller):
    """Routes Triton's clients and tools (tritonclient, perf_analyzer) expect beside the core protocol."""

    path = "/v2"
    tags = ["triton extensions"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get(
        ["/models/{name:str}/config", "/models/{name:str}/versions/{version:str}/config"],
        summary="Model config",
        responses=errors(400, 404, 503),
    )
    async def model_config(self, services: ServicesDep, name: str, version: str | None = None) -> dict[str, Any]:
        """The model's configuration in Triton's format."""
        return triton_config(services.table.get(name, version))

    @get(
        ["/models/stats", "/models/{name:str}/stats", "/models/{name:str}/versions/{version:str}/stats"],
        summary="Statistics",
        responses=errors(400, 404, 503),
    )
    async def stats(self, services: ServicesDep, name: str | None = None, version: str | None = None) -> dict[str, Any]:
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
        return {"model_stats": [m.stats.as_triton(m.name, str(m.version)) for m in models]}

    @post(
        "/repository/index",
        summary="Repository index",
        status_code=200,
        guards=[require_role_when_keyed],
        opt={"role": "viewer"},  # a read, though Triton makes it a POST
        security=KEYED_WHEN_CONFIGURED,
        responses=errors(400, 401, 403, 413),
    )
    async def index(self, request: Request[Any, Any, Any], services: ServicesDep) -> list[dict[str, str]]:
        """Every model in the repository with its state; body ``{"ready": true}`` lists only ready ones.

        Needs a viewer key once the server has any key, like the other reads keys guard.
        """
        body = await request.body()
        ready_only = False
        if body.strip():
            data = await request.json()
            ready_only = bool(isinstance(data, dict) and data.get("ready"))
        rows = services.table.index()
        return [r for r in rows if r["state"] == "READY"] if ready_only else rows

    @post(
        "/repository/models/{name:str}/load",
        summary="Load a model",
        status_code=200,
        guards=[require_role_when_keyed],
        opt={"role": "operator"},
        security=KEYED_WHEN_CONFIGURED,
        responses=errors(400, 401, 403, 404, 409, 413, 503),
        operation_class=OptionalBody,
    )
    async def load(self, services: ServicesDep, name: str, data: LoadRequest | None = None) -> dict[str, Any]:
        """(Re)load a model from the repository; the old versions serve until the new ones are ready.

        Needs an operator key once the server has any key (without keys it is open, as in Triton). Triton's
        ``parameters.config`` (and ``file:`` overrides) are refused: the model's config comes from its folder only.
        """
        _refuse_overrides(data)
        if name not in services.table.repository.model_names():
            raise ModelNotFound(f"model {name!r} is not in the repository")
        versions = await services.table.load(name)
        services.lifecycle.refresh()
        return {"name": name, "versions": [str(v) for v in versions]}

    @post(
        "/repository/models/{name:str}/unload",
        summary="Unload a model",
        status_code=200,
        guards=[require_role_when_keyed],
        opt={"role": "operator"},
        security=KEYED_WHEN_CONFIGURED,
        responses=errors(400, 401, 403, 404, 409, 503),
    )
    async def unload(self, services: ServicesDep, name: str) -> dict[str, Any]:
        """Stop serving a model after answering every request already queued (an operator key, as for load)."""
        await services.table.unload(name)
        return {"name": name}
