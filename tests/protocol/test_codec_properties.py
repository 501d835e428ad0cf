"""Property tests: random shapes and datatypes survive request decoding and response encoding."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tests.protocol.oip_wire import assert_same, build_request, parse_response

from driftline.protocol.codec import decode_infer_request, encode_infer_response
from driftline.protocol.datatypes import to_datatype

NUMERIC = [np.dtype(t) for t in ("?", "u1", "<u2", "<u4", "<u8", "i1", "<i2", "<i4", "<i8", "<f2", "<f4", "<f8")]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
# max_examples comes from the active hypothesis profile (the suite-wide fast/slow profiles).
PROFILE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tensors(draw: st.DrawFn, *, finite: bool) -> np.ndarray:
    """A numeric array, or a BYTES object array of arbitrary unicode text."""
    shape = draw(SHAPES)
    if draw(st.booleans()):
        texts = draw(st.lists(st.text(max_size=5), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        arr = np.empty(len(texts), dtype=object)
        arr[:] = [t.encode() for t in texts]
        return arr.reshape(shape)
    dtype = draw(st.sampled_from(NUMERIC))
    elements = hnp.from_dtype(dtype, allow_nan=not finite, allow_infinity=not finite) if dtype.kind == "f" else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@PROFILE
@given(
    arrays=st.lists(tensors(finite=True), min_size=1, max_size=4),
    binary=st.lists(st.booleans(), min_size=4, max_size=4),
    nested=st.booleans(),
)
def test_request_roundtrip(arrays: list[np.ndarray], binary: list[bool], nested: bool) -> None:
    specs = [(f"in{i}", a, to_datatype(a.dtype), binary[i]) for i, a in enumerate(arrays)]
    body, header_length = build_request(specs, nested=nested)
    decoded = decode_infer_request(body, header_length)
    assert list(decoded.inputs) == [s[0] for s in specs]
    for name, want, _, _ in specs:
        assert_same(decoded.inputs[name], want)


@PROFILE
@given(arrays=st.lists(tensors(finite=False), min_size=1, max_size=4), data=st.data())
def test_response_roundtrip_binary(arrays: list[np.ndarray], data: st.DataObject) -> None:
    outs = {f"out{i}": a for i, a in enumerate(arrays)}
    chosen = data.draw(st.sets(st.sampled_from(sorted(outs))))
    # JSON has no NaN or infinity: outputs with them go binary here (test_codec covers JSON's null).
    chosen |= {k for k, a in outs.items() if a.dtype.kind == "f" and not np.isfinite(a).all()}
    body, header_length = encode_infer_response("m", "1", None, outs, binary_outputs=chosen)
    assert (header_length is None) == (not chosen)
    _, parsed = parse_response(body, header_length, {k: a.dtype for k, a in outs.items()})
    for name, want in outs.items():
        assert_same(parsed[name], want)
