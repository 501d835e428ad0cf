"""Renumbering the unseen-category codes inside a serialized `_core.DriftWindow`.

Strings a categorical feature's reference never saw get codes in the order each process first met them
(features.Encoder), so the same code can stand for different strings in two processes. Before another process's
window merges into this one's, its codes are rewritten to this process's codes for the same strings.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

from driftline.errors import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["recode_window"]

# rust/drift/window.rs WindowState::to_bytes: magic, u32 version, u64 n_rows, sample_cap, seed, n_features; then per
# feature u64 nan, u64s hist, u64 n pairs of (f64 bits of a code, u64 count), u64 count, 4 f64, f64s sample, u64 rng.
_MAGIC = b"DLWIN\0\0"
_VERSION = 1
_U64 = struct.Struct("<Q")


def _u64(data: bytes, pos: int) -> int:
    if pos + 8 > len(data):
        raise DriftInputError("damaged drift window: truncated")
    return int(_U64.unpack_from(data, pos)[0])


def recode_window(data: bytes, codes: Mapping[int, Mapping[float, float]]) -> bytes:
    """Rewrite the unseen-category codes of some features in a core window's bytes.

    Args:
        data: `_core.DriftWindow.to_bytes()` output.
        codes: Feature index -> {code in ``data``: code to use}; codes not listed stay. Two codes mapped to one
            have their counts added.

    Returns:
        The rewritten bytes (``data`` itself when there is nothing to rewrite).

    Raises:
        DriftInputError: Not a core window of the known format version.
    """
    if not any(codes.values()):
        return data
    head = len(_MAGIC) + 4
    if not data.startswith(_MAGIC) or struct.unpack_from("<I", data, len(_MAGIC))[0] != _VERSION:
        raise DriftInputError("damaged drift window: not the core's format version 1")
    pos = head + 24
    n_features = _u64(data, pos)
    pos += 8
    out, start = [], 0
    for j in range(n_features):
        pos += 8  # nan
        pos += 8 + 8 * _u64(data, pos)  # hist
        n_pairs = _u64(data, pos)
        if j in codes and codes[j] and n_pairs:
            out.append(data[start:pos])
            pairs = np.frombuffer(data, "<u8", 2 * n_pairs, pos + 8).reshape(n_pairs, 2)
            counts: dict[float, int] = {}
            for bits, count in pairs.tolist():
                code = float(np.uint64(bits).view(np.float64))
                code = codes[j].get(code, code)
                counts[code] = counts.get(code, 0) + int(count)
            rewritten = np.array(
                [(np.float64(c).view(np.uint64), n) for c, n in sorted(counts.items())], dtype="<u8"
            ).reshape(-1, 2)
            out.append(_U64.pack(len(counts)) + rewritten.tobytes())
            start = pos + 8 + 16 * n_pairs
        pos += 8 + 16 * n_pairs
        pos += 8 + 32  # count, mean, m2, min, max
        pos += 8 + 8 * _u64(data, pos)  # sample
        pos += 8  # rng state
    if pos != len(data):
        raise DriftInputError("damaged drift window: sizes do not add up")
    out.append(data[start:])
    return b"".join(out)
