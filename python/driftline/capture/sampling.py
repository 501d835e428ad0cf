"""Which requests are captured: decided by a hash of the request id, so every replica decides alike."""

from __future__ import annotations

import hashlib

__all__ = ["should_capture"]

_SPAN = float(1 << 64)


def should_capture(request_id: str, rate: float) -> bool:
    """Whether the request with this id is captured at ``rate`` (0..1); the same answer in every process."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SPAN < rate
