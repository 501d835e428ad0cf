"""Feature columns for drift: kinds, string vocabularies, and normalisation to C-contiguous float64."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import numpy as np

from driftline.drift.frames import Table, load_table, to_table
from driftline.errors import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

__all__ = ["Column", "FeatureKind", "Schema", "Table", "encode", "load_table", "to_table"]

FeatureKind = Literal["numeric", "categorical"]

# A numeric column with at most this many distinct reference values is tested like a category,
# as Evidently does (its chi-square / z-test branch for low-cardinality numerics).
LOW_CARDINALITY = 5

# Live data may bring unbounded new strings; past this many per column they share one code.
MAX_NEW_STRINGS = 10_000


class Column(msgspec.Struct, frozen=True):
    """One feature as the profile knows it.

    Attributes:
        name: Column name.
        kind: "numeric" or "categorical" (the kind the statistics use).
        declared: The kind the data declared: "numeric", "categorical", "string" or "bool".
        vocabulary: For string columns, the reference's sorted distinct strings; code i is vocabulary[i].
        distinct: Distinct non-missing reference values; exact for categorical columns, for numeric
            ones capped at LOW_CARDINALITY + 1 (meaning "more").
    """

    name: str
    kind: FeatureKind
    declared: str
    vocabulary: list[str] | None = None
    distinct: int = 0


class Schema(msgspec.Struct, frozen=True):
    """The ordered columns of a profile."""

    columns: list[Column]

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    def index(self, name: str) -> int:
        """Position of a column.

        Args:
            name: Column name.

        Returns:
            The column's index.

        Raises:
            DriftInputError: No such column.
        """
        for i, c in enumerate(self.columns):
            if c.name == name:
                return i
        raise DriftInputError(f"unknown feature {name!r}; the profile has {self.names}")


def _strings(values: NDArray[Any]) -> tuple[NDArray[np.bool_], NDArray[Any]]:
    """Mask of present values and the present values as str."""
    present = np.array([v is not None and v == v for v in values], dtype=bool)
    return present, values[present].astype(str)


def _distinct_upto(values: NDArray[np.float64], limit: int = LOW_CARDINALITY) -> int:
    """Distinct values, exact up to `limit`; `limit + 1` means "more". O(n) instead of a full sort."""
    seen = np.unique(values[:4096])
    rest = values
    while seen.size <= limit:
        rest = rest[~np.isin(rest, seen)]
        if rest.size == 0:
            return int(seen.size)
        seen = np.union1d(seen, np.unique(rest[:4096]))
    return limit + 1


def infer_schema(table: Table, categorical: Sequence[str] | None = None) -> Schema:
    """Decide every column's kind and build string vocabularies from reference data.

    Args:
        table: The reference columns.
        categorical: Names to treat as categorical regardless of dtype.

    Returns:
        The schema (kind, vocabulary, distinct count per column).

    Raises:
        DriftInputError: A name in `categorical` is not a column.
    """
    forced = set(categorical or ())
    unknown = sorted(forced - set(table.names))
    if unknown:
        raise DriftInputError(f"unknown categorical feature(s) {unknown}; the data has {table.names}")
    columns: list[Column] = []
    for name, values in table.columns.items():
        if name in table.string_columns:
            _, present = _strings(values)
            vocab = sorted(set(present.tolist()))
            columns.append(Column(name, "categorical", "string", vocab, len(vocab)))
            continue
        finite = values[~np.isnan(values)]
        declared = "bool" if name in table.bool_columns else "numeric"
        if name in forced:
            declared = "categorical"
        distinct = int(np.unique(finite).size) if declared != "numeric" else _distinct_upto(finite)
        kind: FeatureKind = "numeric"
        if declared != "numeric" or distinct <= LOW_CARDINALITY:
            kind = "categorical"
        columns.append(Column(name, kind, declared, None, distinct))
    return Schema(columns)


class Encoder:
    """Maps tables onto a schema's column order as one C-contiguous float64 array.

    Strings become vocabulary codes; strings the reference never saw get codes after the vocabulary
    (stable for the encoder's lifetime, at most MAX_NEW_STRINGS per column, then one shared code).
    Thread-safe: the drift thread encodes while a report maps other processes' new strings (drift/shared.py).
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._lock = threading.Lock()
        self._codes = [
            {s: float(i) for i, s in enumerate(c.vocabulary)} if c.vocabulary is not None else None
            for c in schema.columns
        ]

    def new_strings(self, feature: int) -> dict[float, str]:
        """Codes this encoder gave to strings outside the vocabulary.

        Args:
            feature: Column index.

        Returns:
            Code -> string for the new strings seen so far.
        """
        col = self.schema.columns[feature]
        codes = self._codes[feature]
        if codes is None or col.vocabulary is None:
            return {}
        base = len(col.vocabulary)
        with self._lock:
            return {c: s for s, c in codes.items() if c >= base}

    def codes_of(self, feature: int, strings: list[str]) -> list[float]:
        """The codes of strings of a column, giving those never seen their codes as `encode` would.

        Args:
            feature: Column index (a string column).
            strings: The strings.

        Returns:
            One code per string.
        """
        with self._lock:
            return [self._code(feature, s) for s in strings]

    def _code(self, feature: int, s: str) -> float:
        """One string's code (new strings numbered after the vocabulary); the caller holds the lock."""
        codes = self._codes[feature]
        assert codes is not None
        code = codes.get(s)
        if code is None:
            vocab_size = len(self.schema.columns[feature].vocabulary or ())
            n_new = len(codes) - vocab_size
            code = float(len(codes)) if n_new < MAX_NEW_STRINGS else float(vocab_size + MAX_NEW_STRINGS)
            if n_new < MAX_NEW_STRINGS:
                codes[s] = code
        return code

    def label(self, feature: int, code: float) -> str:
        """The display label of a categorical code.

        Args:
            feature: Column index.
            code: The code.

        Returns:
            The string it stands for, or the number itself.
        """
        col = self.schema.columns[feature]
        if col.vocabulary is not None:
            i = int(code)
            if 0 <= i < len(col.vocabulary) and i == code:
                return col.vocabulary[i]
            return self.new_strings(feature).get(code, "(other)")
        return f"{code:g}"

    def _encode_strings(self, feature: int, values: NDArray[Any]) -> NDArray[np.float64]:
        out = np.full(len(values), np.nan)
        present, strs = _strings(values)
        if strs.size == 0:
            return out
        uniq, inverse = np.unique(strs, return_inverse=True)
        out[present] = np.asarray(self.codes_of(feature, uniq.tolist()), np.float64)[inverse]
        return out

    def encode(self, data: Any) -> NDArray[np.float64]:
        """Encode data with the schema's columns, in the schema's order.

        Args:
            data: A frame, mapping, Table, or 2-D numpy array already in the schema's column order.

        Returns:
            A (rows, features) float64 array; NaN marks missing values. Frames are encoded column-major: each
            column is copied contiguously, and the core reads one feature at a time, which measured 3x faster for
            PSI and 1.4x for KS at 1M x 20 than a row-major array (the core takes either layout).

        Raises:
            DriftInputError: Columns missing, or a numpy array with the wrong number of columns.
        """
        names = self.schema.names
        if isinstance(data, np.ndarray) and data.dtype.kind in "fiub":
            if data.ndim != 2 or data.shape[1] != len(names):
                raise DriftInputError(
                    f"expected an array of shape (rows, {len(names)}) for features {names}, got {data.shape}"
                )
            return np.asarray(data, dtype=np.float64)
        table = to_table(data, names).select(names)
        out = np.empty((table.n_rows, len(names)), dtype=np.float64, order="F")
        for j, name in enumerate(names):
            values = table.columns[name]
            if self._codes[j] is not None:
                if name not in table.string_columns:
                    raise DriftInputError(f"feature {name!r} was strings in the reference but is numeric now")
                out[:, j] = self._encode_strings(j, values)
            elif name in table.string_columns:
                raise DriftInputError(f"feature {name!r} was numeric in the reference but is strings now")
            else:
                out[:, j] = values
        return out


def encode(schema: Schema, data: Any) -> NDArray[np.float64]:
    """Encode data onto a schema with a fresh Encoder (see Encoder.encode).

    Args:
        schema: The columns.
        data: The data.

    Returns:
        The (rows, features) float64 array.
    """
    return Encoder(schema).encode(data)
