"""JSON side of the Open Inference Protocol: the request header and tensors carried as JSON ``data``."""

from __future__ import annotations

import functools
import math
import operator
from functools import cache
from typing import Annotated, Any, Final, NamedTuple

import msgspec
import numpy as np

from driftline.errors import BadRequest
from driftline.protocol.datatypes import DATATYPES

__all__ = [
    "MAX_PARAMETER_DEPTH",
    "Header",
    "HeaderInput",
    "WireInput",
    "WireOutput",
    "WireRequest",
    "check_parameters",
    "decode_data",
    "decode_header",
    "encode_data",
]


class WireInput(msgspec.Struct):
    """An input as the slow path reads it: ``data`` stays raw JSON until the datatype says how to read it."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    # An empty Raw means "no data key" (binary inputs); a JSON null becomes b"null".
    data: msgspec.Raw = msgspec.Raw()


class WireOutput(msgspec.Struct):
    """A requested output as it arrives."""

    name: str
    parameters: dict[str, Any] | None = None


class WireRequest(msgspec.Struct):
    """An inference request (or the JSON header of a binary one) as the slow path reads it."""

    inputs: list[WireInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[WireOutput] | None = None


#: One input of a parsed header: name, shape, datatype, parameters, and data (a flat list already checked
#: against the datatype, raw JSON still to be read, or None when absent).
HeaderInput = tuple[str, list[int], str, dict[str, Any] | None, list[Any] | msgspec.Raw | None]


class Header(NamedTuple):
    """The JSON part of an inference request."""

    id: str | None
    parameters: dict[str, Any] | None
    outputs: list[WireOutput] | None
    inputs: list[HeaderInput]


def _element_type(datatype: str) -> Any:
    if datatype == "BOOL":
        return bool
    if datatype == "BYTES":
        return str
    if datatype in ("FP16", "FP32", "FP64", "BF16"):
        # null stands for NaN: JSON has no NaN, and the encoder writes NaN/inf as null (kept so that a JSON
        # response can be sent back as a request; binary tensors carry NaN and inf exactly).
        return float | None
    if datatype == "UINT64":
        # msgspec bounds must fit in int64; numpy raises OverflowError past 2**64 - 1.
        return Annotated[int, msgspec.Meta(ge=0)]
    info = np.iinfo(datatype.lower())
    return Annotated[int, msgspec.Meta(ge=int(info.min), le=int(info.max))]


# Floats narrower than a JSON number (a double): the cast from the parsed value can overflow to infinity.
_FLOAT_MAX: Final = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "BF16": 3.3895313892515355e38}
_NARROW_FLOATS: Final = frozenset(_FLOAT_MAX)


def _fast_element_type(datatype: str) -> Any:
    # The fast path bounds narrow floats in msgspec's parse (a few ns per element): an in-range list then needs
    # no overflow check after the cast. A value past the bound sends the body down the slow path, which words
    # the error (or accepts a value that rounds to the largest finite one).
    if datatype in _FLOAT_MAX:
        bound = _FLOAT_MAX[datatype]
        return Annotated[float, msgspec.Meta(ge=-bound, le=bound)] | None
    return _element_type(datatype)


# NOTE: the fast path. A tagged union on "datatype" lets msgspec check every element of flat `data` against
# its datatype (kind and range) in C during the one parse of the body, as fast as an untyped parse. Any
# validation failure (nested data, a wrong element, an unknown datatype) falls back to the slow path, which
# re-reads the body with `data` kept raw, accepts nested data, and words errors by input name.
_TYPED_INPUTS: Final[dict[type, str]] = {
    msgspec.defstruct(
        f"{datatype}Input",
        [
            ("name", str),
            ("shape", list[int]),
            ("parameters", dict[str, Any] | None, None),
            ("data", list[_fast_element_type(datatype)] | None, None),  # type: ignore[misc]
        ],
        tag_field="datatype",
        tag=datatype,
    ): datatype
    for datatype in sorted(DATATYPES)
}
_TypedRequest: Final[Any] = msgspec.defstruct(
    "TypedRequest",
    [
        ("inputs", list[functools.reduce(operator.or_, _TYPED_INPUTS)]),  # type: ignore[misc]
        ("id", str | None, None),
        ("parameters", dict[str, Any] | None, None),
        ("outputs", list[WireOutput] | None, None),
    ],
)
_TYPED_DECODER: Final = msgspec.json.Decoder(_TypedRequest)
_RAW_DECODER: Final = msgspec.json.Decoder(WireRequest)
# msgspec parses nesting recursively and gives up at Python's recursion limit (about 1,000 levels, less the stack).
_TOO_DEEP: Final = "malformed JSON in inference request: nested too deeply"
#: Parameter values (request, input or output level) may nest lists and objects this deep: code that reads them
#: (str() of a routing key, repr() in messages) recurses, and must never meet the parser's own limit.
MAX_PARAMETER_DEPTH: Final = 32


def decode_header(buf: bytes | memoryview) -> Header:
    """Parse the JSON part of an inference request.

    Args:
        buf: The JSON text (the whole body, or its first ``Inference-Header-Content-Length`` bytes).

    Returns:
        The header; flat ``data`` of a known datatype comes back decoded and checked, anything else raw.

    Raises:
        BadRequest: The JSON is malformed (the message gives the byte offset) or a field has the wrong type
            (the message gives its path, e.g. ``$.inputs[0].shape``).
    """
    try:
        typed = _TYPED_DECODER.decode(buf)
    except msgspec.ValidationError:
        pass  # the slow path below finds out what is wrong, or reads what the fast path cannot
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON in inference request: {exc}") from None
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    else:
        inputs = [(i.name, i.shape, _TYPED_INPUTS[type(i)], i.parameters, i.data) for i in typed.inputs]
        return Header(typed.id, typed.parameters, typed.outputs, inputs)
    try:
        req = _RAW_DECODER.decode(buf)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid inference request: {exc}") from None
    except msgspec.DecodeError as exc:
        # A body both mistyped and malformed: the fast path stopped at the type, this parse reaches the syntax.
        raise BadRequest(f"malformed JSON in inference request: {exc}") from None
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    return Header(
        req.id,
        req.parameters,
        req.outputs,
        [(i.name, i.shape, i.datatype, i.parameters, i.data if _has_data(i.data) else None) for i in req.inputs],
    )


def check_parameters(where: str, params: dict[str, Any] | None) -> None:
    """Refuse parameter values nested deeper than :data:`MAX_PARAMETER_DEPTH` (``where`` opens the message).

    Raises:
        BadRequest: naming the parameter.
    """
    if not params:
        return
    for key, value in params.items():
        if not isinstance(value, list | dict):
            continue  # the usual case: a scalar, nothing to walk
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > MAX_PARAMETER_DEPTH:
                raise BadRequest(f"{where}parameter {key!r} is nested more than {MAX_PARAMETER_DEPTH} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, list | dict))


def _has_data(raw: msgspec.Raw) -> bool:
    return len(raw) != 0 and not (len(raw) == 4 and bytes(raw) == b"null")


@cache
def _data_decoder(datatype: str, ndim: int) -> msgspec.json.Decoder[Any]:
    typ = _element_type(datatype)
    for _ in range(max(ndim, 1)):
        typ = list[typ]  # type: ignore[valid-type]
    return msgspec.json.Decoder(typ)


def _is_nested(raw: msgspec.Raw) -> bool:
    # Only the opening brackets matter: "[[" (maybe with whitespace) means nested lists.
    head = bytes(memoryview(raw)[:64]).lstrip()
    return head[1:].lstrip().startswith(b"[")


def _decode_raw(name: str, raw: msgspec.Raw, datatype: str, shape: list[int]) -> tuple[list[Any], bool]:
    nested = len(shape) > 1 and _is_nested(raw)
    try:
        return _data_decoder(datatype, len(shape) if nested else 1).decode(raw), nested
    except msgspec.ValidationError as exc:
        # msgspec's paths are relative to `data`: "at `$[3]`" reads better as "at `data[3]`".
        detail = str(exc).replace("`$", "`data")
        raise BadRequest(f"input {name!r}: data does not fit datatype {datatype}: {detail}") from None


def decode_data(
    name: str,
    data: list[Any] | msgspec.Raw,
    datatype: str,
    dtype: np.dtype[Any],
    shape: list[int],
    count: int,
) -> np.ndarray[Any, Any]:
    """Turn an input's JSON ``data`` into an array of the declared dtype and shape.

    Args:
        name: The input's name, for error messages.
        data: A flat list from the fast path, or the raw JSON of ``data``: a flat row-major list, or lists
            nested like ``shape``.
        datatype: The protocol datatype (already validated).
        dtype: Its numpy dtype.
        shape: The declared shape (already validated: no negative dims).
        count: ``prod(shape)``.

    Returns:
        A new C-contiguous array with ``shape`` and ``dtype``; ``BYTES`` elements are UTF-8 ``bytes``.

    Raises:
        BadRequest: Elements of the wrong kind or out of range, or an element count or nesting that does
            not match ``shape``; the message names the input.
    """
    if isinstance(data, msgspec.Raw):
        values, nested = _decode_raw(name, data, datatype, shape)
    else:
        values, nested = data, False
    if not nested and len(values) != count:
        raise BadRequest(f"input {name!r}: shape {shape} needs {count} elements, got {len(values)}")
    if datatype == "BYTES":
        return _bytes_array(name, values, shape, nested)
    try:
        arr = _to_array(name, values, datatype, dtype, checked=not isinstance(data, msgspec.Raw))
    except OverflowError:
        # Only UINT64 gets here: msgspec cannot bound-check past int64.
        raise BadRequest(f"input {name!r}: data does not fit datatype {datatype}: a value is out of range") from None
    except ValueError:
        # numpy refuses ragged nesting ("inhomogeneous shape").
        raise BadRequest(f"input {name!r}: nested data is ragged; expected shape {shape}") from None
    # An empty tensor's nesting stops at its first zero dim ([[]] for [1, 0, 5]); only the count matters.
    if nested and list(arr.shape) != shape and not (count == 0 and arr.size == 0):
        raise BadRequest(f"input {name!r}: nested data has shape {list(arr.shape)}, expected {shape}")
    return arr.reshape(shape)


def _to_array(
    name: str, values: list[Any], datatype: str, dtype: np.dtype[Any], *, checked: bool
) -> np.ndarray[Any, Any]:
    # JSON numbers are finite doubles (msgspec refuses 1e400) and null is NaN, so an infinity after the cast is
    # a finite value the datatype cannot hold: refused rather than handed to the model as inf.
    if datatype not in _NARROW_FLOATS:
        return np.array(values, dtype=dtype)
    if checked:
        # In range (the fast path's bounds). Through float64: numpy builds a float32 array from a list element
        # by element, about 4x slower than a float64 one and its cast together.
        return np.array(values, dtype=np.float64).astype(dtype)
    try:
        with np.errstate(over="raise"):
            if datatype == "BF16":
                # Through float64: ml_dtypes' bfloat16 takes no None, and one rounding from the double keeps it exact.
                arr = np.array(values, dtype=np.float64).astype(dtype)
            else:
                arr = np.array(values, dtype=dtype)
    except FloatingPointError:
        arr = None
    # bfloat16's cast rounds to inf without raising the overflow flag, hence the check on the result too.
    if arr is None or (datatype == "BF16" and np.isinf(arr).any()):
        raise BadRequest(_out_of_range(name, values, datatype, dtype)) from None
    return arr


def _out_of_range(name: str, values: list[Any], datatype: str, dtype: np.dtype[Any]) -> str:
    flat = np.array(values, dtype=np.float64).reshape(-1)
    with np.errstate(over="ignore"):
        index = int(np.flatnonzero(np.isinf(flat.astype(dtype)))[0])
    return (
        f"input {name!r}: data element {index} ({float(flat[index])!r}) is out of range for datatype {datatype} "
        f"(it would become infinite; the largest finite {datatype} is {_FLOAT_MAX[datatype]!r})"
    )


def _bytes_array(name: str, values: list[Any], shape: list[int], nested: bool) -> np.ndarray[Any, Any]:
    if nested:
        # np.array on str lists would build a fixed-width 'U' array; it only tells us the nesting shape.
        try:
            nested_shape = list(np.shape(values))
        except ValueError:
            raise BadRequest(f"input {name!r}: nested data is ragged; expected shape {shape}") from None
        if nested_shape != shape and not (math.prod(shape) == math.prod(nested_shape) == 0):
            raise BadRequest(f"input {name!r}: nested data has shape {nested_shape}, expected {shape}")
        values = np.array(values, dtype=object).reshape(-1).tolist()
    arr = np.empty(len(values), dtype=object)
    arr[:] = [s.encode() for s in values]
    return arr.reshape(shape)


def encode_data(name: str, arr: np.ndarray[Any, Any], datatype: str) -> list[Any]:
    """Turn an output array into the flat row-major list that goes into JSON ``data``.

    NaN and infinities become ``null`` (JSON has none); ask for binary outputs to keep them exactly.

    Args:
        name: The output's name, for error messages.
        arr: The output array.
        datatype: Its protocol datatype.

    Returns:
        Python scalars: bool, int, float, or str for ``BYTES``.

    Raises:
        BadRequest: A ``BYTES`` element is not valid UTF-8 (it can only travel as binary data).
    """
    flat = arr.reshape(-1)
    if datatype == "BF16":
        return flat.astype(np.float32).tolist()
    if datatype != "BYTES":
        return flat.tolist()
    try:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    except UnicodeDecodeError:
        raise BadRequest(
            f"output {name!r} holds bytes that are not valid UTF-8; request it with binary_data=true"
        ) from None
