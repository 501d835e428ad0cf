"""Open Inference Protocol core routes: health, server and model metadata, readiness, inference."""

from __future__ import annotations

import gzip
import zlib
from typing import TYPE_CHECKING, Any

from litestar import Controller, Request, Response, get, post
from litestar.status_codes import HTTP_200_OK

from driftline import __version__
from driftline.errors import BadRequest, DriftlineError, ModelNotFound, PayloadTooLarge
from driftline.protocol import (
    MetadataTensor,
    ModelMetadataResponse,
    ServerMetadataResponse,
    decode_infer_request,
    encode_infer_response,
)
from driftline.serving.signature import check_request

if TYPE_CHECKING:
    from driftline.serving.table import LoadedModel, ModelTable

__all__ = ["EXTENSIONS", "V2Controller", "infer_response"]

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


def _table(request: Request[Any, Any, Any]) -> ModelTable:
    table: ModelTable = request.app.state.table
    return table


def _metadata(model: LoadedModel, versions: list[int]) -> ModelMetadataResponse:
    return ModelMetadataResponse(
        name=model.name,
        versions=[str(v) for v in versions],
        platform=model.backends[0].platform,
        inputs=[MetadataTensor(t.name, t.datatype, list(t.shape)) for t in model.inputs],
        outputs=[MetadataTensor(t.name, t.datatype, list(t.shape)) for t in model.outputs],
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


async def infer_response(request: Request[Any, Any, Any], name: str, version: str | None) -> Response[bytes]:
    """Decode, validate, queue, await and encode one inference request."""
    model = _table(request).get(name, version)
    headers = request.headers
    body = await request.body()
    body = _decode_body(body, headers.get("content-encoding"), request.app.state.max_request_bytes)
    raw_length = headers.get(HEADER_LENGTH)
    try:
        header_length = int(raw_length) if raw_length is not None else None
    except ValueError:
        raise BadRequest(f"header Inference-Header-Content-Length must be an integer, got {raw_length!r}") from None
    decoded = decode_infer_request(body, header_length)
    rows = check_request(model, decoded.inputs, decoded.outputs)
    params = decoded.parameters
    try:
        priority = int(params.get("priority", 0))
        timeout_us = int(params.get("timeout", 0))
    except (TypeError, ValueError):
        raise BadRequest("parameters 'priority' and 'timeout' must be integers") from None
    outputs = await model.batcher.infer(decoded.inputs, rows, priority, timeout_us)
    if decoded.outputs is not None:
        outputs = {n: outputs[n] for n in decoded.outputs}
    payload, json_length = encode_infer_response(
        model.name, str(model.version), decoded.id, outputs, decoded.binary_outputs
    )
    if json_length is None:
        return Response(payload, media_type=JSON, status_code=HTTP_200_OK)
    return Response(payload, media_type=OCTETS, status_code=HTTP_200_OK, headers={HEADER_LENGTH: str(json_length)})


class V2Controller(Controller):
    """The protocol's required routes under ``/v2``."""

    path = "/v2"
    tags = ["inference"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/health/live", summary="Server liveness")
    async def live(self) -> dict[str, bool]:
        """The process is up."""
        return {"live": True}

    @get("/health/ready", summary="Server readiness")
    async def ready(self, request: Request[Any, Any, Any]) -> Response[dict[str, bool]]:
        """Ready once start-up loading is over and at least one model is loaded (503 otherwise)."""
        ok = bool(request.app.state.started) and bool(_table(request).loaded())
        return Response({"ready": ok}, status_code=200 if ok else 503)

    @get("", summary="Server metadata")
    async def server_metadata(self) -> ServerMetadataResponse:
        """Name, version and the protocol extensions this server supports."""
        return ServerMetadataResponse(name="driftline", version=__version__, extensions=EXTENSIONS)

    @get(["/models/{name:str}", "/models/{name:str}/versions/{version:str}"], summary="Model metadata")
    async def model_metadata(
        self, request: Request[Any, Any, Any], name: str, version: str | None = None
    ) -> ModelMetadataResponse:
        """Signature, platform and loaded versions of a model."""
        table = _table(request)
        model = table.get(name, version)
        return _metadata(model, sorted(table.loaded().get(name, {})))

    @get(
        ["/models/{name:str}/ready", "/models/{name:str}/versions/{version:str}/ready"],
        summary="Model readiness",
    )
    async def model_ready(
        self, request: Request[Any, Any, Any], name: str, version: str | None = None
    ) -> Response[dict[str, Any]]:
        """200 when the model (version) is loaded; 404 when unknown; 503 when it exists but is not loaded."""
        try:
            _table(request).get(name, version)
        except ModelNotFound:
            raise
        except DriftlineError:
            return Response({"name": name, "ready": False}, status_code=503)
        return Response({"name": name, "ready": True}, status_code=200)

    @post(["/models/{name:str}/infer", "/models/{name:str}/versions/{version:str}/infer"], summary="Inference")
    async def infer(self, request: Request[Any, Any, Any], name: str, version: str | None = None) -> Response[bytes]:
        """Run inference: JSON tensors, or Triton's binary tensor extension."""
        return await infer_response(request, name, version)
