"""Open Inference Protocol (KServe v2 REST, Triton binary tensor extension): messages, codecs, datatypes."""

from __future__ import annotations

from driftline.protocol.codec import DecodedRequest, decode_infer_request, encode_infer_response
from driftline.protocol.datatypes import DATATYPES, to_datatype, to_numpy_dtype
from driftline.protocol.types import (
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    ModelMetadataResponse,
    RequestInput,
    RequestOutput,
    ResponseOutput,
    ServerMetadataResponse,
)

__all__ = [
    "DATATYPES",
    "DecodedRequest",
    "ErrorResponse",
    "InferenceRequest",
    "InferenceResponse",
    "MetadataTensor",
    "ModelMetadataResponse",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerMetadataResponse",
    "decode_infer_request",
    "encode_infer_response",
    "to_datatype",
    "to_numpy_dtype",
]
