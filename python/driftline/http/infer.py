"""The REST part of an inference: undo the body's compression, decode it, call the data plane, encode the answer.

Shared by the raw-ASGI fast path (:mod:`driftline.http.fastpath`) and the Litestar route (:mod:`driftline.http.v2`),
so the protocol's HTTP rules live in one place; what happens between decode and encode is the data plane's
(:mod:`driftline.serving.dataplane`).
"""

from __future__ import annotations

import gzip
import zlib
from typing import TYPE_CHECKING

from driftline.errors import BadRequest, PayloadTooLarge
from driftline.logs.access import checked_id
from driftline.protocol.codec import decode_infer_request, encode_infer_response

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.logs.access import RequestNote
    from driftline.serving.dataplane import DataPlane

__all__ = ["HEADER_LENGTH", "infer_rest"]

HEADER_LENGTH = "inference-header-content-length"


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


async def infer_rest(
    plane: DataPlane,
    name: str,
    version: str | None,
    body: bytes,
    encoding: str | None,
    header_length: str | None,
    headers: Sequence[tuple[bytes, bytes]],
    limit: int,
    note: RequestNote | None = None,
) -> tuple[bytes, int | None]:
    """Answer one ``POST .../infer``: ``encoding`` is Content-Encoding, ``header_length`` the binary extension's
    Inference-Header-Content-Length, ``headers`` the raw ASGI pairs, ``limit`` the body limit after decompression;
    ``note`` (the access log's) gets the body's ``id`` when it has no id yet, then the version and rows that answered.

    Returns:
        The response body and, for a binary response, the length of its JSON header.
    """
    plane.admit(name, headers)  # the key, then an unknown model's 404, before any body problem
    body = _decode_body(body, encoding, limit)
    try:
        json_length = int(header_length) if header_length is not None else None
    except ValueError:
        raise BadRequest(f"header Inference-Header-Content-Length must be an integer, got {header_length!r}") from None
    decoded = decode_infer_request(body, json_length)
    if note is None:
        model, outputs = await plane.infer(name, version, decoded, headers)
    else:
        if note.id is None:
            note.id = checked_id(decoded.id)
        model, outputs = await plane.infer(name, version, decoded, headers)
        if note.id is None:
            note.id = checked_id(decoded.id)  # the id capture gave the request, which its answer carries
        note.model, note.version = model.name, model.version
        first = next(iter(decoded.inputs.values()), None)
        note.rows = int(first.shape[0]) if first is not None and first.ndim else 1
    return encode_infer_response(model.name, str(model.version), decoded.id, outputs, decoded.binary_outputs)
