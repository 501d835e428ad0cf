"""Open Inference Protocol messages as msgspec Structs (bodies and the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "ErrorResponse",
    "InferenceRequest",
    "InferenceResponse",
    "MetadataTensor",
    "ModelMetadataResponse",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerMetadataResponse",
]


class MetadataTensor(msgspec.Struct, frozen=True):
    """A tensor of a model's signature."""

    name: str
    datatype: str
    shape: list[int]


class ServerMetadataResponse(msgspec.Struct, frozen=True):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class ModelMetadataResponse(msgspec.Struct, frozen=True, omit_defaults=True):
    """``GET /v2/models/{name}``."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] | None = None


class RequestInput(msgspec.Struct, omit_defaults=True):
    """One input tensor of a request; ``data`` is absent when its bytes follow the JSON header (binary extension)."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any = None


class RequestOutput(msgspec.Struct, omit_defaults=True):
    """An output the client asks for; ``parameters.binary_data`` asks for it in binary."""

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(msgspec.Struct, omit_defaults=True):
    """``POST /v2/models/{name}/infer`` body (or its JSON header, with the binary extension)."""

    inputs: list[RequestInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[RequestOutput] | None = None


class ResponseOutput(msgspec.Struct, omit_defaults=True):
    """One output tensor of a response; binary outputs carry ``parameters.binary_data_size`` and no data."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferenceResponse(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The inference response body (or its JSON header)."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class ErrorResponse(msgspec.Struct, frozen=True):
    """Every error answer: ``{"error": "..."}``."""

    error: str
