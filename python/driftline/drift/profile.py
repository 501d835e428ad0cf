"""Reference profiles: built once from training data, saved next to it, loaded by the server."""

from __future__ import annotations

import hashlib
import itertools
import logging
import struct
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from driftline import _core
from driftline.drift.features import Encoder, Schema, Table, infer_schema, load_table, to_table
from driftline.errors import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import NDArray

__all__ = ["PROFILE_FILE", "REFERENCE_FILE", "ReferenceProfile"]

PROFILE_FILE = "reference.profile"
REFERENCE_FILE = "reference.parquet"
_MAGIC = b"DLPROFv1"

Binning = Literal["quantile", "evidently"]
_log = logging.getLogger("driftline.drift")
# Model folders whose profile could not be saved, already logged (a reload builds it again, and says nothing).
_unsaved_logged: set[Path] = set()


class ReferenceProfile:
    """A reference (training) data set, sorted and binned once, plus the schema that encodes new data.

    Wraps `driftline._core.ReferenceProfile` with what Python owns: column kinds and string vocabularies.

    Attributes:
        core: The Rust profile.
        schema: Columns in order: kind, vocabulary, distinct count.
        unsaved: Why `for_model` kept a profile it built only in memory (the folder is read-only), else None.
    """

    def __init__(self, core: _core.ReferenceProfile, schema: Schema) -> None:
        self.core = core
        self.schema = schema
        self.encoder = Encoder(schema)
        self.unsaved: str | None = None

    @classmethod
    def build(
        cls,
        data: Any,
        *,
        features: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        bins: int = 10,
    ) -> ReferenceProfile:
        """Profile reference data.

        Args:
            data: A polars/pandas DataFrame, a mapping of arrays, a 2-D numpy array, or a Parquet/CSV path.
            features: Columns to keep (default all).
            categorical: Columns to treat as categorical whatever their dtype.
            bins: Quantile bins for numeric histograms (PSI, JS, KL, Hellinger).

        Returns:
            The profile.

        Raises:
            DriftInputError: Unreadable file, unknown column or unsupported dtype.
        """
        table = load_table(str(data)) if isinstance(data, str | Path) else to_table(data)
        if features is not None:
            table = table.select(list(features))
        return cls._from_table(table, categorical, bins)

    @classmethod
    def _from_table(cls, table: Table, categorical: Sequence[str] | None, bins: int) -> ReferenceProfile:
        if not table.names:
            raise DriftInputError("the reference has no features")
        schema = infer_schema(table, categorical)
        encoded = Encoder(schema).encode(table)
        core = _core.ReferenceProfile.build(
            encoded, schema.names, [c.kind == "categorical" for c in schema.columns], bins
        )
        return cls(core, schema)

    @property
    def names(self) -> list[str]:
        """Feature names in order."""
        return self.schema.names

    @property
    def n_rows(self) -> int:
        """Rows in the reference."""
        return int(self.core.n_rows)

    def encode(self, data: Any) -> NDArray[np.float64]:
        """Encode current data onto this profile's columns (see features.Encoder.encode).

        Args:
            data: A frame, mapping, or 2-D array in the profile's column order.

        Returns:
            (rows, features) C-contiguous float64.
        """
        return self.encoder.encode(data)

    def compare(
        self,
        current: NDArray[np.float64] | _core.DriftWindow,
        stats: Sequence[str],
        binning: Binning = "quantile",
    ) -> dict[str, NDArray[np.float64]]:
        """Run the Rust statistics against encoded current data or a live window.

        Args:
            current: Encoded (rows, features) array or a `_core.DriftWindow` on this profile.
            stats: Statistic names (docs/drift.md).
            binning: "quantile" or "evidently".

        Returns:
            The `_core` result dict: "<stat>", "<stat>_pvalue", "n_ref", "n_cur", "nan_ref", "nan_cur",
            "sampled".
        """
        return self.core.compare(current, list(stats), binning)

    def bin_labels(self, feature: int) -> list[str]:
        """Labels of the reference bins (numeric) or categories (categorical) of a feature.

        Args:
            feature: Column index.

        Returns:
            One label per bin, in `_core` histogram order.
        """
        if self.schema.columns[feature].kind == "categorical":
            return [self.encoder.label(feature, float(c)) for c in self.core.categories(feature)]
        edges = self.core.edges(feature).tolist()
        if not edges:
            return ["all"]
        labels = [f"< {edges[0]:.4g}"]
        labels += [f"[{lo:.4g}, {hi:.4g})" for lo, hi in itertools.pairwise(edges)]
        labels.append(f">= {edges[-1]:.4g}")
        return labels

    @cached_property
    def digest(self) -> str:
        """The sha256 of `to_bytes()`: which reference a saved live window was built on (computed once)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def to_bytes(self) -> bytes:
        """Serialise: magic, schema JSON length (u32 LE), schema JSON, `_core` profile bytes.

        Returns:
            The bytes.
        """
        meta = msgspec.json.encode(self.schema)
        return _MAGIC + struct.pack("<I", len(meta)) + meta + self.core.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """Inverse of to_bytes.

        Args:
            data: Bytes from to_bytes.

        Returns:
            The profile.

        Raises:
            DriftInputError: Not a driftline profile or a damaged one.
        """
        head = len(_MAGIC) + 4
        if len(data) < head or not data.startswith(_MAGIC):
            raise DriftInputError("not a driftline reference profile (bad magic)")
        (size,) = struct.unpack("<I", data[len(_MAGIC) : head])
        try:
            schema = msgspec.json.decode(data[head : head + size], type=Schema)
        except msgspec.DecodeError as exc:
            raise DriftInputError(f"damaged reference profile: {exc}") from exc
        core = _core.ReferenceProfile.from_bytes(data[head + size :])
        if list(core.names) != schema.names:
            raise DriftInputError("damaged reference profile: schema and statistics disagree on features")
        return cls(core, schema)

    def save(self, path: str | Path) -> None:
        """Write the profile atomically (temporary file, then rename).

        Args:
            path: Target file.
        """
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        try:
            tmp.write_bytes(self.to_bytes())
            tmp.replace(target)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile written by save.

        Args:
            path: The file.

        Returns:
            The profile.

        Raises:
            DriftInputError: Missing or damaged file.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DriftInputError(f"cannot read profile {path}: {exc.strerror}") from exc
        return cls.from_bytes(data)

    @classmethod
    def for_model(
        cls, model_dir: str | Path, *, categorical: Sequence[str] | None = None, bins: int = 10
    ) -> ReferenceProfile | None:
        """The profile of a model directory: `reference.profile` when it is newer than `reference.parquet`,
        else built from the Parquet file once and saved, so the server never rescans training data.

        Args:
            model_dir: The model's folder in the repository.
            categorical: Columns to treat as categorical when building.
            bins: Quantile bins when building.

        Returns:
            The profile, or None when the model has no reference data.
        """
        folder = Path(model_dir)
        saved, parquet = folder / PROFILE_FILE, folder / REFERENCE_FILE
        if saved.exists() and (not parquet.exists() or saved.stat().st_mtime >= parquet.stat().st_mtime):
            return cls.load(saved)
        if not parquet.exists():
            return None
        profile = cls.build(parquet, categorical=categorical, bins=bins)
        try:
            profile.save(saved)
        except OSError as exc:
            # A read-only repository still serves the model: the profile lives in memory, rebuilt at each load.
            profile.unsaved = f"{saved} could not be written ({exc.strerror or exc}): the profile is kept in memory"
            if folder not in _unsaved_logged:
                _unsaved_logged.add(folder)
                _log.warning("drift reference profile: %s", profile.unsaved)
        return profile
