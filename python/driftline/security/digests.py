"""The one home of artifact digests: what a sha256 looks like, and how a file's is computed."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["file_sha256", "is_sha256"]

_SHA256: Final = re.compile(r"\A[0-9a-f]{64}\Z")  # \Z: "$" would let a trailing newline through
_CHUNK: Final = 1 << 20


def is_sha256(value: str) -> bool:
    """Whether ``value`` is a sha256 as driftline writes it: 64 lower-case hex digits (never a path)."""
    return _SHA256.match(value) is not None


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (model files can be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
