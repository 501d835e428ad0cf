"""Open Inference Protocol core routes: health, server and model metadata, readiness, inference."""

from __future__ import annotations

import gzip
import reprlib
import time
import zlib
from typing import TYPE_CHECKING, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK

from driftline import __version__
from driftline.errors import BadRequest, DriftlineError, ModelNotFound, PayloadTooLarge
from driftline.http.deps import table_of
from driftline.http.metrics import record_error
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, InferOperation, errors, infer_responses
from driftline.protocol import (
    MetadataTensor,
    ModelMetadataResponse,
    ServerMetadataResponse,
    decode_infer_request,
    encode_infer_response,
)
from driftline.serving.signature import check_request

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.datastructures import State

    from driftline.serving.loaded import LoadedModel

__all__ = ["EXTENSIONS", "HEADER_LENGTH", "V2Controller", "run_inference"]

EXTENSIONS = [
    "binary_tensor_data",
    "model_repository",
    "statistics",
    "model_configuration",
    "schedule_policy",
]
HEADER_LENGTH = "inference-header-content-length"
JSON = "application/json"
OCTETS = "application/octet-stream"


def _metadata(model: LoadedModel, versions: list[int]) -> ModelMetadataResponse:
    return ModelMetadataResponse(
        name=model.name,
        versions=[str(v) for v in versions],
        platform=model.backends[0].platform,
        inputs=[MetadataTensor(t.name, t.datatype, list(t.shape)) for t in model.inputs],
        outputs=[MetadataTensor(t.name, t.datatype, list(t.shape)) for t in model.outputs],
        # Where it runs, and why when that differs from config.toml (device = "auto" without CUDA says so here).
        parameters={"device": model.backends[0].device, "notes": [*model.backends[0].notes, *model.source.notes]},
    )


def _decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo the request compression tritonclient can apply (gzip, deflate), bounded by the body limit."""
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding == "gzip":
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            decoder = zlib.decompressobj()
        else:
            raise BadRequest(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or identity")
        out = decoder.decompress(body, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BadRequest(f"request body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed request body is over the {limit}-byte limit")
    return out


async def run_inference(
    state: State,
    name: str,
    version: str | None,
    body: bytes,
    encoding: str | None,
    header_length: str | None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> tuple[bytes, int | None]:
    """Decode, validate, route, queue, await and encode one inference request (shared by Litestar and the fast path).

    ``version`` is a version number, an alias, or None (the routing policy and the default alias choose).
    ``headers`` are the raw ASGI header pairs (the API key and a sticky A/B key may be among them).

    Returns:
        The response body and, for a binary response, the length of its JSON header.
    """
    if state.require_key:
        state.key_ring.authenticate(headers, "predictor")
    table = state.table
    table.require(name)  # an unknown model is a 404 before any body problem
    body = _decode_body(body, encoding, state.max_request_bytes)
    try:
        json_length = int(header_length) if header_length is not None else None
    except ValueError:
        raise BadRequest(f"header Inference-Header-Content-Length must be an integer, got {header_length!r}") from None
    decoded = decode_infer_request(body, json_length)
    params = decoded.parameters
    model, shadow = table.route(name, version, params, headers)
    rows = check_request(model, decoded.inputs, decoded.outputs)
    priority = timeout_us = 0
    if params:
        # Only JSON integers: int() would take true as 1 and truncate 0.5; the batcher checks the ranges.
        priority, timeout_us = params.get("priority", 0), params.get("timeout", 0)
        for key, value in (("priority", priority), ("timeout", timeout_us)):
            if type(value) is not int:
                raise BadRequest(f"parameter {key!r} must be an integer, got {reprlib.repr(value)}")
    # `in_flight` is counted by the fast path; 1 means this request is the only one the process is handling.
    alone = state.in_flight == 1
    start = time.perf_counter()
    outputs = await model.batcher.infer(decoded.inputs, rows, priority, timeout_us, alone)
    if shadow is not None:
        table.shadows.submit(model, shadow, decoded.inputs, rows, outputs, time.perf_counter() - start)
    if decoded.outputs is not None:
        outputs = {n: outputs[n] for n in decoded.outputs}
    return encode_infer_response(model.name, str(model.version), decoded.id, outputs, decoded.binary_outputs)


class V2Controller(Controller):
    """The protocol's required routes under ``/v2``."""

    path = "/v2"
    tags = ["inference"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/health/live", summary="Server liveness")
    async def live(self) -> dict[str, bool]:
        """The process is up."""
        return {"live": True}

    @get(
        "/health/ready",
        summary="Server readiness",
        responses={503: ResponseSpec(dict[str, bool], description="Not ready", generate_examples=False)},
    )
    async def ready(self, request: Request[Any, Any, Any]) -> Response[dict[str, bool]]:
        """Ready once start-up loading is over and at least one model is loaded (503 otherwise)."""
        ok = bool(request.app.state.started) and bool(table_of(request).loaded())
        return Response({"ready": ok}, status_code=200 if ok else 503)

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
        self, request: Request[Any, Any, Any], name: str, version: str | None = None
    ) -> ModelMetadataResponse:
        """Signature, platform and loaded versions of a model."""
        table = table_of(request)
        model = table.get(name, version)
        return _metadata(model, sorted(table.loaded().get(name, {})))

    @get(
        ["/models/{name:str}/ready", "/models/{name:str}/versions/{version:str}/ready"],
        summary="Model readiness",
        responses={
            **errors(400, 404),
            503: ResponseSpec(dict[str, Any], description="Present but not loaded", generate_examples=False),
        },
    )
    async def model_ready(
        self, request: Request[Any, Any, Any], name: str, version: str | None = None
    ) -> Response[dict[str, Any]]:
        """200 when the model (version) is loaded; 404 when unknown; 503 when it exists but is not loaded."""
        try:
            table_of(request).get(name, version)
        except ModelNotFound:
            raise
        except DriftlineError as exc:  # present but not loaded (failed, unloaded, or its alias's version is not)
            return Response({"name": name, "ready": False, "reason": str(exc)}, status_code=503)
        return Response({"name": name, "ready": True}, status_code=200)

    @post(
        ["/models/{name:str}/infer", "/models/{name:str}/versions/{version:str}/infer"],
        summary="Inference",
        status_code=HTTP_200_OK,
        responses=infer_responses(),
        operation_class=InferOperation,
        security=KEYED_WHEN_CONFIGURED,
    )
    async def infer(self, request: Request[Any, Any, Any], name: str, version: str | None = None) -> Response[bytes]:
        """Run inference: JSON tensors, or Triton's binary tensor extension.

        The server answers this route from :class:`driftline.http.fastpath.InferFastPath`; this handler documents
        it in the OpenAPI schema and serves it when the app runs without the fast path.
        """
        headers = request.headers
        state = request.app.state
        try:
            payload, json_length = await run_inference(
                state,
                name,
                version,
                await request.body(),
                headers.get("content-encoding"),
                headers.get(HEADER_LENGTH),
                list(request.scope["headers"]),
            )
        except DriftlineError as exc:
            record_error(state, name, version, exc.http_status)  # as the fast path counts it
            raise
        if json_length is None:
            return Response(payload, media_type=JSON, status_code=HTTP_200_OK)
        return Response(payload, media_type=OCTETS, status_code=HTTP_200_OK, headers={HEADER_LENGTH: str(json_length)})
