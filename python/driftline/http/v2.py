"""Open Inference Protocol core routes: health, server and model metadata, readiness, inference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK
from msgspec import UNSET, UnsetType

from driftline import __version__
from driftline.errors import DriftlineError, ModelNotFound
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.infer import HEADER_LENGTH, infer_rest
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, InferOperation, errors, infer_responses
from driftline.protocol.types import MetadataTensor, ModelMetadataResponse, ServerMetadataResponse

if TYPE_CHECKING:
    from driftline.serving.loaded import LoadedModel

__all__ = ["EXTENSIONS", "V2Controller"]

EXTENSIONS = [
    "binary_tensor_data",
    "model_repository",
    "statistics",
    "model_configuration",
    "schedule_policy",
]
JSON = "application/json"
OCTETS = "application/octet-stream"


class Liveness(msgspec.Struct, frozen=True):
    """The process is up."""

    live: bool


class Readiness(msgspec.Struct, frozen=True):
    """Whether the server serves (200) or not (503): not yet, or no more (``draining``, with the ``reason``)."""

    ready: bool
    draining: bool | UnsetType = UNSET
    reason: str | UnsetType = UNSET


class ModelReadiness(msgspec.Struct, frozen=True):
    """Whether a model (version) serves; ``reason`` only when it does not."""

    name: str
    ready: bool
    reason: str | UnsetType = UNSET


def _metadata(model: LoadedModel, versions: list[int], described: list[LoadedModel]) -> ModelMetadataResponse:
    lineage = {str(m.version): msgspec.to_builtins(m.lineage) for m in described if m.lineage is not None}
    return ModelMetadataResponse(
        name=model.name,
        versions=[str(v) for v in versions],
        platform=model.backends[0].platform,
        inputs=[MetadataTensor(t.name, t.datatype, list(t.shape)) for t in model.inputs],
        outputs=[MetadataTensor(t.name, t.datatype, list(t.shape)) for t in model.outputs],
        # Where it runs, and why when that differs from config.toml (device = "auto" without CUDA says so here).
        parameters={"device": model.backends[0].device, "notes": [*model.backends[0].notes, *model.source.notes]},
        lineage=lineage or None,
    )


class V2Controller(Controller):
    """The protocol's required routes under ``/v2``."""

    path = "/v2"
    tags = ["inference"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/health/live", summary="Server liveness")
    async def live(self) -> Liveness:
        """The process is up."""
        return Liveness(live=True)

    @get(
        "/health/ready",
        summary="Server readiness",
        responses={503: ResponseSpec(Readiness, description="Not ready", generate_examples=False)},
    )
    async def ready(self, services: ServicesDep) -> Response[Readiness]:
        """Ready once start-up loading is over and at least one model is loaded, until a stop signal (503 otherwise).

        Requests are served only after the lifespan opened the services, which is after start-up loading. From
        SIGTERM on it answers 503 while requests are still served for ``http.drain_delay_s``, so a load balancer
        stops sending first; liveness and the models' readiness stay true (the models do still serve).
        """
        drain = services.drain
        if drain.draining:
            return Response(Readiness(ready=False, draining=True, reason=drain.reason()), status_code=503)
        ok = bool(services.table.loaded())
        return Response(Readiness(ready=ok), status_code=200 if ok else 503)

    @get("", summary="Server metadata")
    async def server_metadata(self) -> ServerMetadataResponse:
        """Name, version and the protocol extensions this server supports."""
        return ServerMetadataResponse(name="driftline", version=__version__, extensions=EXTENSIONS)

    @get(
        ["/models/{name:str}", "/models/{name:str}/versions/{version:str}"],
        summary="Model metadata",
        responses=errors(400, 404, 503),
    )
    async def model_metadata(
        self, services: ServicesDep, name: str, version: str | None = None
    ) -> ModelMetadataResponse:
        """Signature, platform and loaded versions of a model, and the lineage of each (of the one asked for)."""
        table = services.table
        model = table.get(name, version)
        loaded = table.loaded().get(name, {})
        described = [model] if version is not None else [m for _, m in sorted(loaded.items())]
        return _metadata(model, sorted(loaded), described)

    @get(
        ["/models/{name:str}/ready", "/models/{name:str}/versions/{version:str}/ready"],
        summary="Model readiness",
        responses={
            **errors(400, 404),
            503: ResponseSpec(ModelReadiness, description="Present but not loaded", generate_examples=False),
        },
    )
    async def model_ready(
        self, services: ServicesDep, name: str, version: str | None = None
    ) -> Response[ModelReadiness]:
        """200 when the model (version) is loaded; 404 when unknown; 503 when it exists but is not loaded."""
        try:
            services.table.get(name, version)
        except ModelNotFound:
            raise
        except DriftlineError as exc:  # present but not loaded (failed, unloaded, or its alias's version is not)
            return Response(ModelReadiness(name=name, ready=False, reason=str(exc)), status_code=503)
        return Response(ModelReadiness(name=name, ready=True), status_code=200)

    @post(
        ["/models/{name:str}/infer", "/models/{name:str}/versions/{version:str}/infer"],
        summary="Inference",
        status_code=HTTP_200_OK,
        responses=infer_responses(),
        operation_class=InferOperation,
        security=KEYED_WHEN_CONFIGURED,
    )
    async def infer(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, version: str | None = None
    ) -> Response[bytes]:
        """Run inference: JSON tensors, or Triton's binary tensor extension.

        The server answers this route from :class:`driftline.http.fastpath.InferFastPath`; this handler documents
        it in the OpenAPI schema and serves it when the app runs without the fast path.
        """
        headers = request.headers
        plane = services.plane
        try:
            payload, json_length = await infer_rest(
                plane,
                name,
                version,
                await request.body(),
                headers.get("content-encoding"),
                headers.get(HEADER_LENGTH),
                list(request.scope["headers"]),
                services.settings.http.max_request_bytes,
            )
        except DriftlineError as exc:
            plane.record_error(name, version, exc.http_status)  # as the fast path counts it
            raise
        if json_length is None:
            return Response(payload, media_type=JSON, status_code=HTTP_200_OK)
        return Response(payload, media_type=OCTETS, status_code=HTTP_200_OK, headers={HEADER_LENGTH: str(json_length)})
