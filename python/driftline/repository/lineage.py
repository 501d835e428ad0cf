"""A version's lineage: what its artifact is, where it came from and what trained it.

A version folder may hold ``lineage.json`` beside its artifact: what the training pipeline recorded (run id,
parameters, metrics, datasets, notes). A registry sync writes that file from what the registry states (for MLflow:
the version's run). The loader adds what driftline knows itself: the artifact's sha256 and where the version came
from (the folder, or the registry's reference when a sync placed it).

A bad ``lineage.json`` (not JSON, a wrong type, an unknown field, over `MAX_LINEAGE_BYTES`) fails that version's
load with a message naming the file and the field, as a bad config.toml does: a version must not serve under a
record that says something other than what its owner meant.
"""

from __future__ import annotations

import math
import reprlib
from typing import TYPE_CHECKING

import msgspec

from driftline.errors import ConfigError
from driftline.repository.placement import placed_record

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "LINEAGE_FILE",
    "MAX_LINEAGE_BYTES",
    "Dataset",
    "Lineage",
    "RunRecord",
    "encode_record",
    "finite_metrics",
    "lineage_of",
    "read_run_record",
]

LINEAGE_FILE = "lineage.json"
# Checked before the file is read: a record of a run, not a place for data.
MAX_LINEAGE_BYTES = 64 * 1024


class Dataset(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """A dataset the run read: its name, content digest and where it lives, as far as they are known."""

    name: str
    digest: str = ""
    source: str = ""


class RunRecord(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """What trained the version, as ``lineage.json`` states it; every field is optional."""

    run_id: str | None = None
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    datasets: list[Dataset] = []
    notes: str | None = None
    # The artifact's own location at the registry (MLflow's model version source), when it differs from source_uri.
    artifact_uri: str | None = None


class Lineage(RunRecord, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """A loaded version's lineage: its run record plus what driftline knows of the artifact itself.

    Attributes:
        sha256: The artifact file's digest.
        source_uri: Where the version came from: its folder, or the registry's reference (``models:/iris/3``,
            the registry folder's URL) when a registry sync placed it.
        registry: The registry URL a sync placed it from; absent for a version put in the repository by hand.
    """

    sha256: str = ""
    source_uri: str = ""
    registry: str | None = None


def read_run_record(folder: Path) -> RunRecord:
    """The ``lineage.json`` of a version folder; an empty record when there is none.

    Raises:
        ConfigError: naming the file and, for a wrong type or unknown field, the field (``$.params.lr``).
    """
    path = folder / LINEAGE_FILE
    try:
        size = path.stat().st_size
        if size > MAX_LINEAGE_BYTES:
            raise ConfigError(f"{path}: {size} bytes, over the {MAX_LINEAGE_BYTES} a lineage.json may have")
        with path.open("rb") as fh:
            raw = fh.read(MAX_LINEAGE_BYTES + 1)  # the file may have grown since the stat
    except FileNotFoundError:
        return RunRecord()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_LINEAGE_BYTES:
        raise ConfigError(f"{path}: over the {MAX_LINEAGE_BYTES} bytes a lineage.json may have")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    try:
        _check_tables(body)
        return msgspec.convert(body, RunRecord)
    except (msgspec.ValidationError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _check_tables(body: object) -> None:
    """TypeError naming the key of a parameter or metric of the wrong type (msgspec says ``$.params[...]``)."""
    if not isinstance(body, dict):
        return  # msgspec says "Expected `object`"
    for table, kind, want in (("params", str, "a string"), ("metrics", float | int, "a number")):
        values = body.get(table)
        if not isinstance(values, dict):
            continue  # absent, or msgspec names the table's wrong type
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, kind):
                raise TypeError(f"$.{table}.{key}: want {want}, got {reprlib.repr(value)}")


def lineage_of(record: RunRecord, model_dir: Path, version: int, artifact: Path, sha256: str) -> Lineage:
    """The lineage of a version: its run ``record`` (`read_run_record`) and where its artifact (digest ``sha256``)
    came from, the registry's reference when a sync placed it, else its folder."""
    placed = placed_record(model_dir, version)
    # A record for other bytes belongs to a version since replaced by hand: the folder is the truth then.
    if placed is not None and placed.get("sha256") == sha256 and placed.get("ref"):
        source_uri, registry = placed["ref"], placed.get("source")
    else:
        source_uri, registry = str(artifact.parent), None
    return Lineage(**msgspec.structs.asdict(record), sha256=sha256, source_uri=source_uri, registry=registry)


def encode_record(record: RunRecord) -> bytes:
    """``record`` as the text of a ``lineage.json``."""
    return msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n"


def finite_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics JSON can hold: NaN and infinities would be written as null and fail the load."""
    return {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
