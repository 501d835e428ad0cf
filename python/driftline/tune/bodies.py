"""Request bodies for the tuner's load: Open Inference Protocol JSON for the model's real signature.

The signature is the one the server serves: a backend instance of the version is loaded (on the CPU, whatever the
model's device: only its inputs are read) as bulk jobs do. The data are rows of the model's ``reference.parquet``
mapped onto the inputs the way `driftline score` maps a file's columns (`jobs.sources.plan_columns`); a model
without reference data, or one whose reference does not map onto its inputs, gets random values of each input's
datatype and shape instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np
import polars as pl

from driftline.backends import load_backend
from driftline.drift.profile import REFERENCE_FILE
from driftline.errors import BadRequest, ConfigError
from driftline.jobs.sources import InputFile, plan_columns, scan, to_arrays
from driftline.protocol.datatypes import to_numpy_dtype
from driftline.protocol.types import InferenceRequest, RequestInput

if TYPE_CHECKING:
    import numpy.typing as npt

    from driftline.backends.base import TensorSpec
    from driftline.repository.layout import ModelSource

__all__ = ["MAX_BODY_BYTES", "MAX_REQUEST_BATCH", "MAX_ROW_BYTES", "model_inputs", "request_bodies"]

MAX_REQUEST_BATCH: Final = 4096
MAX_BODIES: Final = 100_000
#: One row of one input, in memory; a body, and all the bodies together, as JSON (estimated before building).
MAX_ROW_BYTES: Final = 16 << 20
MAX_BODY_BYTES: Final = 64 << 20
MAX_TOTAL_BYTES: Final = 1 << 30
#: Reference rows read at most (the head of the file): enough variety for a load, bounded memory.
REFERENCE_ROWS: Final = 65_536
# JSON characters per element, an upper estimate (``-1.23456e-05,``) and per BYTES element.
_JSON_CHARS: Final = 14
_TEXT_CHARS: Final = 12


def model_inputs(source: ModelSource, version: int | None = None) -> tuple[TensorSpec, ...]:
    """The input signature the server serves for ``version`` (default: the latest its policy loads).

    Raises:
        ConfigError: no such version, or the model cannot be loaded on the CPU (the message says why).
    """
    chosen = version if version is not None else max(source.versions_to_load() or source.artifacts)
    if chosen not in source.artifacts:
        raise ConfigError(f"model {source.name!r} has no version {chosen} (versions: {sorted(source.artifacts)})")
    # Only the signature is wanted: on the CPU, one instance, so a cuda model's signature is read here too.
    config = msgspec.structs.replace(source.config, device="cpu", instances=1)
    backend = load_backend(source.backend, source.artifacts[chosen], config)
    try:
        return backend.inputs
    finally:
        backend.close()


def _row_shape(spec: TensorSpec) -> tuple[int, ...]:
    """One row's shape: the dimensions after the first (the batch one), dynamic ones as 1."""
    return tuple(1 if d == -1 else d for d in spec.shape[1:])


def _itemsize(datatype: str) -> int:
    return 8 if datatype == "BYTES" else int(to_numpy_dtype(datatype).itemsize)


def _check_sizes(model: str, specs: tuple[TensorSpec, ...], sizes: list[int]) -> None:
    """Refuse before anything is allocated: a row over `MAX_ROW_BYTES`, a body or all of them too large."""
    json_per_row = 0
    for spec in specs:
        elements = math.prod(_row_shape(spec))
        if elements * _itemsize(spec.datatype) > MAX_ROW_BYTES:
            raise ConfigError(
                f"model {model!r}: one row of input {spec.name!r} (shape {list(spec.shape)}, {spec.datatype}) is "
                f"over {MAX_ROW_BYTES >> 20} MiB; the tuner does not build requests that large"
            )
        json_per_row += elements * (_TEXT_CHARS if spec.datatype == "BYTES" else _JSON_CHARS)
    largest = max(sizes) * json_per_row
    if largest > MAX_BODY_BYTES:
        raise ConfigError(
            f"model {model!r}: a request of {max(sizes)} rows would be about {largest >> 20} MiB of JSON, over "
            f"{MAX_BODY_BYTES >> 20} MiB; use a smaller --request-batch"
        )
    if sum(sizes) * json_per_row > MAX_TOTAL_BYTES:
        raise ConfigError(
            f"model {model!r}: {len(sizes)} requests of up to {max(sizes)} rows would be over "
            f"{MAX_TOTAL_BYTES >> 30} GiB of JSON; use a smaller --request-batch or a shorter trace"
        )


def _reference(source: ModelSource, specs: tuple[TensorSpec, ...]) -> dict[str, npt.NDArray[Any]] | None:
    """Reference rows as the model's input arrays (rows with nulls dropped), or None when they do not fit."""
    path = source.path / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        rows = int(scan(path, "parquet").select(pl.len()).collect().item())
        plan = plan_columns(specs, [InputFile(path, "parquet", rows)], None, [])
        frame = scan(path, "parquet").head(REFERENCE_ROWS).collect()
        arrays, nulls = to_arrays(frame, plan)
    except (BadRequest, pl.exceptions.PolarsError, OSError, ValueError, TypeError):
        return None  # a reference for another input layout: random data still exercises the server
    if nulls is not None:
        arrays = {name: array[~nulls] for name, array in arrays.items()}
    if not arrays or min(len(a) for a in arrays.values()) == 0:
        return None
    return arrays


def _random(spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator) -> npt.NDArray[Any]:
    if spec.datatype == "BYTES":
        letters = np.array(list("abcdefghij"))
        return np.array(["".join(rng.choice(letters, 6)) for _ in range(math.prod(shape))]).reshape(shape)
    dtype = to_numpy_dtype(spec.datatype)
    if spec.datatype == "BOOL":
        return rng.random(shape) < 0.5
    if spec.datatype.startswith(("INT", "UINT")):
        # Small non-negative ints: valid as ids, indices and counts of every integer type.
        return rng.integers(0, 10, shape).astype(dtype)
    return rng.standard_normal(shape)


def _data(array: npt.NDArray[Any], datatype: str) -> list[Any]:
    flat = array.reshape(-1)
    if datatype.startswith(("FP", "BF")):
        # Five decimals, as a client would send: the full float32 repr would make the server parse twice the text.
        values: list[Any] = np.round(flat.astype(np.float64), 5).tolist()
        return values
    values = flat.tolist()
    return [str(v) for v in values] if datatype == "BYTES" else values


def _sizes(request_batch: int, count: int, rows: list[int] | None) -> list[int]:
    if not 1 <= request_batch <= MAX_REQUEST_BATCH:
        raise ConfigError(f"--request-batch {request_batch}: must be in 1..{MAX_REQUEST_BATCH}")
    if rows is None:
        if not 1 <= count <= MAX_BODIES:
            raise ConfigError(f"request bodies: count {count} must be in 1..{MAX_BODIES}")
        return [request_batch] * count
    if not 1 <= len(rows) <= MAX_BODIES:
        raise ConfigError(f"request bodies: {len(rows)} requests; a trace gives 1..{MAX_BODIES}")
    bad = next((r for r in rows if not 1 <= r <= MAX_REQUEST_BATCH), None)
    if bad is not None:
        raise ConfigError(f"request bodies: a request of {bad} rows; each must have 1..{MAX_REQUEST_BATCH}")
    return list(rows)


def request_bodies(
    source: ModelSource,
    model: str,
    request_batch: int,
    count: int = 64,
    seed: int = 0,
    rows: list[int] | None = None,
    *,
    version: int | None = None,
) -> list[bytes]:
    """``count`` JSON request bodies of ``request_batch`` rows each, or (``rows``, for a trace) one per entry.

    A request's rows are its first dimension (the batch one when the model batches; with batching off the same
    shape is a valid full shape); other dynamic dimensions are 1, a fixed first dimension keeps its size.

    Raises:
        ConfigError: request_batch outside 1..4096, a row of an input over 16 MiB, bodies too large, or a model
            that cannot be loaded to read its signature; each a one-line message.
    """
    sizes = _sizes(request_batch, count, rows)
    specs = model_inputs(source, version)
    _check_sizes(model, specs, sizes)
    rng = np.random.default_rng(seed)
    reference = _reference(source, specs)
    bodies: list[bytes] = []
    for size in sizes:
        inputs = []
        picks = None if reference is None else rng.integers(0, len(next(iter(reference.values()))), size)
        for spec in specs:
            first = spec.shape[0] if spec.shape and spec.shape[0] != -1 else size
            shape = (first, *_row_shape(spec)) if spec.shape else ()
            if picks is not None and reference is not None and spec.name in reference and first == size:
                array = reference[spec.name][picks].reshape(shape)
            else:
                array = _random(spec, shape, rng)
            inputs.append(RequestInput(spec.name, list(shape), spec.datatype, data=_data(array, spec.datatype)))
        bodies.append(msgspec.json.encode(InferenceRequest(inputs)))
    return bodies
