"""Job inputs: expanding paths, checking schemas up front, mapping columns to tensors, reading exact-size chunks."""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from driftline.errors import BadRequest
from driftline.jobs.roots import opened
from driftline.protocol.datatypes import to_numpy_dtype

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy.typing as npt

    from driftline.backends.base import TensorSpec
    from driftline.jobs.roots import Roots

__all__ = [
    "ColumnPlan",
    "InputFile",
    "chunk_count",
    "expand_inputs",
    "iter_chunks",
    "plan_columns",
    "read_chunk",
    "scan",
    "to_arrays",
]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file, its format and row count."""

    path: Path
    format: str
    rows: int


def scan(path: Path, fmt: str) -> pl.LazyFrame:
    """A lazy scan of one input file."""
    return pl.scan_parquet(path) if fmt == "parquet" else pl.scan_csv(path)


def expand_inputs(patterns: list[str], roots: Roots | None = None) -> list[InputFile]:
    """Turn files, directories and globs into a sorted, de-duplicated list of readable Parquet/CSV files.

    With ``roots``, every file must resolve inside them, and is counted through the descriptor that checked it.

    Raises:
        BadRequest: naming every pattern that matched nothing, every unsupported file and every unreadable file;
            with roots, every file outside them.
    """
    paths: list[Path] = []
    problems: list[str] = []
    for pattern in patterns:
        candidate = Path(pattern)
        if candidate.is_dir():
            found = sorted(p for p in candidate.iterdir() if p.suffix.lower() in FORMATS and p.is_file())
        elif any(c in pattern for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())  # noqa: PTH207
        else:
            found = [candidate] if candidate.is_file() else []
        if not found:
            problems.append(f"{pattern}: no such file (or no .parquet/.csv files in it)")
        paths.extend(found)
    files: list[InputFile] = []
    resolved = list(dict.fromkeys(p.resolve() for p in paths))
    outside = [str(p) for p in resolved if roots is not None and not roots.contains(p)]
    if outside and roots is not None:
        raise roots.refuse(outside)
    for path in resolved:
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            problems.append(f"{path}: unsupported file type {path.suffix!r} (use .parquet or .csv)")
            continue
        try:
            with opened(path, roots) as source:
                rows = int(scan(source, fmt).select(pl.len()).collect().item())
        except (pl.exceptions.PolarsError, OSError) as exc:
            problems.append(f"{path}: cannot be read as {fmt}: {str(exc).splitlines()[0]}")
            continue
        files.append(InputFile(path, fmt, rows))
    if problems:
        raise BadRequest(f"{len(problems)} bad input(s): " + "; ".join(problems))
    return files


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """Which columns feed which input tensor (a list of scalar columns, or one list/array column)."""

    tensors: dict[str, list[str]]
    list_columns: dict[str, str]
    dtypes: dict[str, np.dtype[Any]]
    widths: dict[str, int | None]
    passthrough: list[str]

    @property
    def model_columns(self) -> list[str]:
        """Every column the model reads."""
        cols = [c for names in self.tensors.values() for c in names]
        return cols + list(self.list_columns.values())


def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _plan_one(
    spec: TensorSpec, given: list[str] | None, schema: pl.Schema, passthrough: list[str], only: bool
) -> tuple[list[str] | None, str | None, list[str]]:
    """Columns (or a list column) for one tensor, and the problems found."""
    width = spec.shape[1] if len(spec.shape) == 2 and spec.shape[1] > 0 else None
    if len(spec.shape) > 2:
        return None, None, [f"input {spec.name!r} has shape {list(spec.shape)}; jobs support [-1] and [-1, F] tensors"]
    if given is None and spec.name in schema and isinstance(schema[spec.name], (pl.List, pl.Array)):
        return None, spec.name, []
    if given is None and len(spec.shape) == 1:
        given = [spec.name]
    if given is None:
        if not only:
            return None, None, [f"input {spec.name!r}: name its columns with --columns {spec.name}=a,b,..."]
        given = [c for c, t in schema.items() if _numeric(t) and c not in passthrough]
        if width is not None and len(given) != width:
            return (
                None,
                None,
                [
                    f"input {spec.name!r} needs {width} columns but the file has {len(given)} numeric columns "
                    f"{given}; choose them with --columns {spec.name}=a,b,..."
                ],
            )
    problems = [f"missing column {c!r} (for input {spec.name!r})" for c in given if c not in schema]
    problems += [
        f"column {c!r} has type {schema[c]}, input {spec.name!r} needs numbers"
        for c in given
        if c in schema and not _numeric(schema[c])
    ]
    expected = width if len(spec.shape) == 2 else 1
    if expected is not None and len(given) != expected:
        problems.append(f"input {spec.name!r} needs {expected} columns, got {len(given)}: {given}")
    return given, None, problems


def plan_columns(
    inputs: tuple[TensorSpec, ...],
    files: list[InputFile],
    columns: dict[str, list[str]] | None,
    passthrough: list[str],
    roots: Roots | None = None,
) -> ColumnPlan:
    """Map columns to the model's input tensors, checking every file's schema before anything is scored.

    Raises:
        BadRequest: listing every missing or mistyped column in every file; with roots, a file now outside them.
    """
    unknown = sorted(set(columns or {}) - {t.name for t in inputs})
    if unknown:
        raise BadRequest(f"--columns names {unknown}, which are not inputs of the model ({[t.name for t in inputs]})")
    problems: list[str] = []
    plan: ColumnPlan | None = None
    for file in files:
        try:
            with opened(file.path, roots) as source:
                schema = scan(source, file.format).collect_schema()
        except pl.exceptions.PolarsError as exc:
            problems.append(f"{file.path}: cannot read its schema: {str(exc).splitlines()[0]}")
            continue
        tensors: dict[str, list[str]] = {}
        lists: dict[str, str] = {}
        file_problems = [f"missing pass-through column {c!r}" for c in passthrough if c not in schema]
        for spec in inputs:
            given = (columns or {}).get(spec.name)
            cols, list_col, found = _plan_one(spec, given, schema, passthrough, len(inputs) == 1)
            file_problems += found
            if cols is not None:
                tensors[spec.name] = cols
            if list_col is not None:
                lists[spec.name] = list_col
        problems += [f"{file.path}: {p}" for p in file_problems]
        if not file_problems and plan is None:
            plan = ColumnPlan(
                tensors,
                lists,
                {t.name: to_numpy_dtype(t.datatype) for t in inputs},
                {t.name: (t.shape[1] if len(t.shape) == 2 and t.shape[1] > 0 else None) for t in inputs},
                list(passthrough),
            )
        elif plan is not None and not file_problems and (tensors, lists) != (plan.tensors, plan.list_columns):
            problems.append(f"{file.path}: its columns map to the model differently from {files[0].path}")
    if problems or plan is None:
        # One line (a CLI error is one line; a job's error field too), every problem named.
        raise BadRequest("the inputs do not fit the model: " + "; ".join(problems or ["no input files"]))
    return plan


def iter_chunks(
    file: InputFile, chunk_rows: int, skip: set[int], roots: Roots | None = None
) -> Iterator[tuple[int, pl.DataFrame]]:
    """Exact ``chunk_rows``-row chunks of a file (the last one shorter), numbered from 0; numbers in ``skip`` are
    read past but not returned. A file with no rows yields one empty chunk, so its output still has a schema.

    With ``roots``, the file is opened and checked once and every chunk is read through that descriptor.
    """
    with opened(file.path, roots) as source:
        yield from _chunks(file, source, chunk_rows, skip)


def chunk_count(file: InputFile, chunk_rows: int) -> int:
    """Chunks of a file (an empty file has one, empty, so that its output still has a schema)."""
    return max(1, math.ceil(file.rows / chunk_rows))


def read_chunk(file: InputFile, chunk_rows: int, index: int) -> pl.DataFrame:
    """Chunk ``index`` of a file on its own, the same rows ``iter_chunks`` gives it (the Ray engine's unit of work).

    A CSV chunk is read by skipping the rows before it: fine for the chunk sizes jobs use, quadratic in the worst
    case, where the local engine streams.
    """
    if file.rows == 0:
        return scan(file.path, file.format).collect()
    return scan(file.path, file.format).slice(index * chunk_rows, chunk_rows).collect()


def _chunks(file: InputFile, source: Path, chunk_rows: int, skip: set[int]) -> Iterator[tuple[int, pl.DataFrame]]:
    total_chunks = chunk_count(file, chunk_rows)
    if file.rows == 0:
        if 0 not in skip:
            yield 0, scan(source, file.format).collect()
        return
    if file.format == "parquet":
        # Parquet slices are cheap (row-group pruning), so skipped chunks are never read.
        for index in range(total_chunks):
            if index not in skip:
                yield index, scan(source, "parquet").slice(index * chunk_rows, chunk_rows).collect()
        return
    pending: list[pl.DataFrame] = []
    size = 0
    index = 0
    for batch in scan(source, "csv").collect_batches(chunk_size=chunk_rows):
        pending.append(batch)
        size += len(batch)
        while size >= chunk_rows:
            whole = pl.concat(pending)
            chunk, rest = whole.head(chunk_rows), whole.slice(chunk_rows)
            if index not in skip:
                yield index, chunk
            index += 1
            pending, size = ([rest] if len(rest) else []), len(rest)
    if size and index not in skip:
        yield index, pl.concat(pending)


def to_arrays(
    frame: pl.DataFrame, plan: ColumnPlan
) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.bool_] | None]:
    """The model's input arrays for a chunk, and a mask of rows with nulls in model columns (None if there are none)."""
    model_cols = plan.model_columns
    null_rows = frame.select(pl.any_horizontal(pl.col(c).is_null() for c in model_cols)).to_series()
    mask = null_rows.to_numpy() if null_rows.any() else None
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, cols in plan.tensors.items():
        block = frame.select(cols).to_numpy()
        array = np.ascontiguousarray(block, dtype=plan.dtypes[name])
        arrays[name] = array if plan.widths[name] is not None or len(cols) > 1 else array[:, 0]
    for name, col in plan.list_columns.items():
        series = frame[col]
        if isinstance(series.dtype, pl.List):
            longest: Any = series.list.len().max()
            width = plan.widths[name] or int(longest or 0)
            series = series.list.to_array(width)
        arrays[name] = np.ascontiguousarray(series.to_numpy(), dtype=plan.dtypes[name])
    return arrays, mask
