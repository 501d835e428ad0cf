"""Tests for driftline.protocol.datatypes."""

from __future__ import annotations

import numpy as np
import pytest
from tests.protocol.oip_wire import SAMPLES

from driftline.errors import BadRequest
from driftline.protocol import datatypes
from driftline.protocol.datatypes import DATATYPES, to_datatype, to_numpy_dtype


def test_every_datatype_maps_both_ways(datatype: str) -> None:
    dtype = to_numpy_dtype(datatype)
    assert dtype == SAMPLES[datatype].dtype
    assert to_datatype(dtype) == datatype
    assert datatype in DATATYPES


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        (np.dtype(">f4"), "FP32"),
        (np.dtype(">i8"), "INT64"),
        (np.dtype("=u2"), "UINT16"),
        (np.dtype("U5"), "BYTES"),
        (np.dtype("S3"), "BYTES"),
        (np.dtype(object), "BYTES"),
        (np.dtype(bool), "BOOL"),
    ],
)
def test_any_byte_order_and_string_dtypes(dtype: np.dtype, name: str) -> None:
    assert to_datatype(dtype) == name


@pytest.mark.parametrize("dtype", [np.dtype(np.complex64), np.dtype("M8[s]"), np.dtype("V2")])
def test_dtype_without_datatype_raises(dtype: np.dtype) -> None:
    with pytest.raises(ValueError, match="no Open Inference Protocol datatype"):
        to_datatype(dtype)


@pytest.mark.parametrize("name", ["FLOAT32", "fp32", "", "STRING"])
def test_unknown_datatype_is_bad_request(name: str) -> None:
    with pytest.raises(BadRequest, match=f"unknown datatype {name!r}"):
        to_numpy_dtype(name)


def test_bf16_uses_ml_dtypes_when_installed() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = to_numpy_dtype("BF16")
    assert dtype == np.dtype(ml_dtypes.bfloat16)
    assert to_datatype(dtype) == "BF16"


def test_bf16_without_ml_dtypes_is_a_clear_bad_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datatypes, "_bfloat16", lambda: None)
    with pytest.raises(BadRequest, match="datatype BF16 is not supported"):
        to_numpy_dtype("BF16")
