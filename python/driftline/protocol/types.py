"""Open Inference Protocol (KServe v2) messages as msgspec Structs, for bodies and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

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


class MetadataTensor(Struct, omit_defaults=True):
    """One input or output of a model's signature; ``-1`` in ``shape`` is a variable dimension."""

    name: str
    datatype: str
    shape: list[int]


class ServerMetadataResponse(Struct, omit_defaults=True):
    """Body of ``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class ModelMetadataResponse(Struct, omit_defaults=True):
    """Body of ``GET /v2/models/{name}[/versions/{version}]``."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] | None = None
    # driftline's extension (clients of the protocol ignore fields they do not know): version -> its lineage.
    lineage: dict[str, Any] | None = None


class RequestInput(Struct, omit_defaults=True):
    """One input tensor of an inference request.

    ``data`` is row-major (flat, or nested like ``shape``); it is absent when the tensor travels in the
    binary section, in which case ``parameters["binary_data_size"]`` gives its byte length.
    """

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class RequestOutput(Struct, omit_defaults=True):
    """One requested output; ``parameters["binary_data"]`` asks for it in the binary section."""

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(Struct, omit_defaults=True):
    """Body (or JSON header) of ``POST /v2/models/{name}[/versions/{version}]/infer``."""

    inputs: list[RequestInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[RequestOutput] | None = None


class ResponseOutput(Struct, omit_defaults=True):
    """One output tensor of a response; a binary output has ``binary_data_size`` in place of ``data``."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferenceResponse(Struct, omit_defaults=True):
    """Body (or JSON header) of an inference response."""

    model_name: str
    outputs: list[ResponseOutput]
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None


class ErrorResponse(Struct):
    """Body of every error response."""

    error: str
