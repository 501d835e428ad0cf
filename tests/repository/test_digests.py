"""Artifact digests: one format check and one file hash for the registry, the cache and the model table."""

from __future__ import annotations

import hashlib

import pytest

from driftline.security.digests import file_sha256, is_sha256


def test_file_sha256_equals_hashlib_across_block_boundaries(tmp_path):
    data = bytes(range(256)) * (4096 + 3)  # a little over 1 MiB: more than one block
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a" * 64, True),
        ("0123456789abcdef" * 4, True),
        ("A" * 64, False),
        ("a" * 63, False),
        ("../" + "a" * 61, False),
        ("a" * 64 + "\n", False),
        ("", False),
    ],
)
def test_is_sha256(value, ok):
    assert is_sha256(value) is ok
