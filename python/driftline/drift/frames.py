"""Named feature columns taken from the data a user hands in: polars, pandas, pyarrow, mappings, numpy arrays, files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.errors import DriftInputError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Table", "load_table", "to_table"]

_ACCEPTED = (
    "a polars DataFrame, LazyFrame or Series, a pandas DataFrame or Series, a pyarrow Table or RecordBatch, "
    "a mapping of column -> values, or a 2-D numpy array"
)


class Table:
    """Named 1-D columns taken from a frame or an array, before encoding.

    Attributes:
        columns: Name -> column values (numpy arrays; strings as object arrays).
        string_columns: Names whose values are strings (or categorical/enum dtypes).
        bool_columns: Names whose values are booleans.
    """

    def __init__(self, columns: dict[str, NDArray[Any]], string_columns: set[str], bool_columns: set[str]) -> None:
        self.columns = columns
        self.string_columns = string_columns
        self.bool_columns = bool_columns
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise DriftInputError(f"columns have different lengths: {sorted(lengths)}")
        self.n_rows = lengths.pop() if lengths else 0

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return list(self.columns)

    def select(self, names: Sequence[str]) -> Table:
        """Keep only `names`, in that order.

        Args:
            names: Columns to keep.

        Returns:
            A new table.

        Raises:
            DriftInputError: A name is not a column, or is named twice.
        """
        if len(set(names)) != len(names):  # the per-batch encode path pays only this set
            twice = sorted({n for n in names if list(names).count(n) > 1})
            raise DriftInputError(f"feature(s) named more than once: {twice}")
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise DriftInputError(f"unknown feature(s) {missing}; the data has {self.names}")
        return Table(
            {n: self.columns[n] for n in names},
            {n for n in names if n in self.string_columns},
            {n for n in names if n in self.bool_columns},
        )


def _from_polars(frame: Any) -> Table:
    import polars as pl

    cols: dict[str, NDArray[Any]] = {}
    strings: set[str] = set()
    bools: set[str] = set()
    for name in frame.columns:
        s = frame.get_column(name)
        dt = s.dtype
        if dt in (pl.Utf8, pl.Categorical) or isinstance(dt, pl.Enum):
            cols[name] = s.cast(pl.Utf8).to_numpy().astype(object)
            strings.add(name)
        elif dt == pl.Boolean:
            cols[name] = s.cast(pl.Float64).to_numpy()
            bools.add(name)
        elif dt.is_numeric():
            cols[name] = s.cast(pl.Float64).fill_null(float("nan")).to_numpy()
        else:
            raise DriftInputError(f"feature {name!r} has unsupported dtype {dt}")
    return Table(cols, strings, bools)


def _from_pandas(frame: Any) -> Table:
    cols: dict[str, NDArray[Any]] = {}
    strings: set[str] = set()
    bools: set[str] = set()
    for name in frame.columns:
        s = frame[name]
        kind = s.dtype.kind if hasattr(s.dtype, "kind") else "O"
        key = str(name)
        if kind == "b":
            cols[key] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            bools.add(key)
        elif kind in "iuf" and str(s.dtype) != "category":
            cols[key] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            cols[key] = np.asarray(s.astype(object).where(s.notna(), None).to_numpy(), dtype=object)
            strings.add(key)
    return Table(cols, strings, bools)


def _unsupported(data: Any) -> DriftInputError:
    kind = type(data)
    return DriftInputError(f"unsupported data type {kind.__module__}.{kind.__qualname__}; expected {_ACCEPTED}")


def _from_polars_object(data: Any) -> Table:
    import polars as pl

    if isinstance(data, pl.LazyFrame):
        try:
            data = data.collect()
        except pl.exceptions.PolarsError as exc:
            raise DriftInputError(f"cannot collect the LazyFrame: {exc}") from exc
    elif isinstance(data, pl.Series):
        data = data.to_frame()  # one feature, named after the Series
    if not isinstance(data, pl.DataFrame):
        raise _unsupported(data)
    return _from_polars(data)


def _from_arrow(data: Any) -> Table:
    import polars as pl
    import pyarrow as pa

    if not isinstance(data, pa.Table | pa.RecordBatch):
        raise _unsupported(data)
    # Through polars, so Arrow columns keep their names and get the kinds polars frames get.
    try:
        frame = pl.from_arrow(data)
    except (pl.exceptions.PolarsError, pa.ArrowException, TypeError, ValueError) as exc:
        raise DriftInputError(f"cannot read the pyarrow {type(data).__name__}: {exc}") from exc
    assert isinstance(frame, pl.DataFrame)  # a Table or RecordBatch gives a frame, never a Series
    return _from_polars(frame)


def to_table(data: Any, names: Sequence[str] | None = None) -> Table:
    """Take columns from a frame (polars, pandas, pyarrow), a mapping of arrays, or a 2-D numpy array.

    Args:
        data: The data. A polars LazyFrame is collected; a polars or pandas Series is one feature named after it.
            pandas and pyarrow are optional and only recognised, never imported, when absent.
        names: Column names for a numpy array (default f0, f1, ...); ignored for frames.

    Returns:
        The columns as a Table.

    Raises:
        DriftInputError: Unsupported input type (named in the message), dtype or shape.
    """
    if isinstance(data, Table):
        return data
    module = type(data).__module__
    if module.startswith("polars"):
        return _from_polars_object(data)
    if module.startswith("pandas"):
        # By class name: pandas is optional and has no type stubs here.
        kinds = {c.__name__ for c in type(data).__mro__ if c.__module__.startswith("pandas")}
        if "Series" in kinds:
            data = data.to_frame()
        elif "DataFrame" not in kinds:
            raise _unsupported(data)
        return _from_pandas(data)
    if module.startswith("pyarrow"):
        return _from_arrow(data)
    if isinstance(data, Mapping):
        import polars as pl

        arrays = {str(k): np.asarray(v) for k, v in data.items()}
        lengths = sorted({len(v) for v in arrays.values()})
        if len(lengths) > 1:
            raise DriftInputError(f"columns have different lengths: {lengths}")
        return _from_polars(pl.DataFrame(arrays))
    if not isinstance(data, np.ndarray | list | tuple):
        raise _unsupported(data)
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise DriftInputError(f"expected a 2-D array (rows, features), got shape {arr.shape}")
    if names is None:
        names = [f"f{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise DriftInputError(f"{len(names)} names given for {arr.shape[1]} columns")
    if arr.dtype.kind in "iufb":
        kinds_bool = arr.dtype.kind == "b"
        fl = arr.astype(np.float64, copy=False)
        cols = {str(n): fl[:, i] for i, n in enumerate(names)}
        return Table(cols, set(), set(cols) if kinds_bool else set())
    cols = {str(n): arr[:, i].astype(object) for i, n in enumerate(names)}
    return Table(cols, set(cols), set())


def load_table(path: str) -> Table:
    """Read a Parquet or CSV file with polars.

    Args:
        path: A `.parquet`/`.pq` or `.csv` file.

    Returns:
        The file's columns.

    Raises:
        DriftInputError: Missing file or unknown extension.
    """
    import polars as pl

    lower = path.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            return _from_polars(pl.read_parquet(path))
        if lower.endswith(".csv"):
            return _from_polars(pl.read_csv(path))
    except FileNotFoundError as exc:
        raise DriftInputError(f"no such file: {path}") from exc
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DriftInputError(f"cannot read {path}: {exc}") from exc
    raise DriftInputError(f"unknown file type {path!r}: expected .parquet or .csv")
