"""The Open Inference Protocol: message types, JSON and binary tensor codecs, and the datatype map."""

from driftline.protocol.datatypes import DATATYPES, to_datatype, to_numpy_dtype
from driftline.protocol.json_codec import DecodedRequest, decode_infer_request, encode_infer_response
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
