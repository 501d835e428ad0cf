"""Labels from a CSV or Parquet file (``driftline feedback upload``), with the checks of a feedback body."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from driftline.errors import BadRequest
from driftline.feedback.targets import check_task, encode_target
from driftline.store.feedback import Feedback

__all__ = ["read_feedback_file"]

_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
_MAX_ROW = 2**31 - 1


def read_feedback_file(
    path: str | Path,
    id_column: str | None,
    target_column: str,
    row_column: str | None = None,
    entity_column: str | None = None,
    *,
    task: str,
) -> list[Feedback]:
    """The labels of a ``.csv`` or ``.parquet`` file: per line an id (and row, default 0) or an entity, and a target.

    Ids and entities are read as text (a CSV id ``007`` stays ``007``). Every refusal is one line naming the file
    and the column, and the line (0 = the first data line) where a value is at fault.

    Raises:
        BadRequest: an unknown suffix, an unreadable or malformed file, a missing column, a null target, both or
            neither of id and entity on a line, a row that is not an int in [0, 2**31), a target unfit for ``task``.
    """
    kind = check_task(task)
    where = Path(path)
    if id_column is None and entity_column is None:
        raise BadRequest(f"{where}: name an id column or an entity column (or both)")
    keys = [c for c in (id_column, entity_column) if c is not None]
    frame = _read(where, keys, [c for c in (*keys, target_column, row_column) if c is not None])
    rows = frame.height
    ids = _text(frame, id_column, where, rows)
    entities = _text(frame, entity_column, where, rows)
    row_values = _rows(frame, row_column, where, rows)
    targets = frame[target_column]
    if kind == "classification" and targets.dtype not in (pl.String, pl.Boolean, *_INTEGERS):
        raise BadRequest(f"{where}: column {target_column!r} holds {targets.dtype}: a label is a string, int or bool")
    if kind == "regression" and not targets.dtype.is_numeric():
        raise BadRequest(f"{where}: column {target_column!r} holds {targets.dtype}: a target is a number")
    out: list[Feedback] = []
    for line, (rid, entity, row, target) in enumerate(zip(ids, entities, row_values, targets.to_list(), strict=True)):
        at = f"{where}: line {line}"
        if target is None:
            raise BadRequest(f"{at}: column {target_column!r} is empty (every line carries a target)")
        if (rid is None) == (entity is None):
            which = "both" if rid is not None else "neither"
            raise BadRequest(f"{at}: columns {' and '.join(map(repr, keys))}: {which} set, a label names one")
        value = encode_target(target, kind, f"{at}: column {target_column!r}")
        if entity is not None:
            if row_column is not None and row is not None:
                raise BadRequest(f"{at}: column {row_column!r}: a label of an entity has no row")
            out.append(Feedback(target=value, entity=entity))
        else:
            if row is None:
                raise BadRequest(f"{at}: column {row_column!r} is empty on a line with an id")
            out.append(Feedback(target=value, request_id=rid, row=row))
    return out


def _read(path: Path, text_columns: list[str], needed: list[str]) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise BadRequest(f"{path}: a feedback file is .csv or .parquet, got {suffix or 'no suffix'!r}")
    try:
        if suffix == ".csv":
            names = pl.read_csv(path, n_rows=0).columns
            _require(path, names, needed)
            # Ids are text: no inference may turn "007" into 7.
            return pl.read_csv(path, columns=needed, schema_overrides=dict.fromkeys(text_columns, pl.String))
        names = list(pl.read_parquet_schema(path))
        _require(path, names, needed)
        return pl.read_parquet(path, columns=needed)
    except BadRequest:
        raise
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadRequest(f"{path}: cannot read it as {suffix[1:]}: {reason}") from None


def _require(path: Path, names: list[str], needed: list[str]) -> None:
    for column in needed:
        if column not in names:
            raise BadRequest(f"{path}: no column {column!r} (it has {', '.join(map(repr, names[:20]))})")


def _text(frame: pl.DataFrame, column: str | None, path: Path, rows: int) -> list[str | None]:
    if column is None:
        return [None] * rows
    values = frame[column]
    if values.dtype in (pl.Null, *_INTEGERS):
        values = values.cast(pl.String)  # a Parquet file may store numeric ids, or a column of nulls only
    if values.dtype != pl.String:
        raise BadRequest(f"{path}: column {column!r} holds {values.dtype}, not text")
    return values.to_list()


def _rows(frame: pl.DataFrame, column: str | None, path: Path, rows: int) -> list[int | None]:
    if column is None:
        return [0] * rows
    values = frame[column]
    if values.dtype == pl.Null:
        values = values.cast(pl.Int64)
    if values.dtype not in _INTEGERS:
        raise BadRequest(f"{path}: column {column!r} holds {values.dtype}: a row is an int >= 0")
    bad = (values < 0) | (values > _MAX_ROW)
    if bad.any():
        line = int(bad.arg_true()[0])
        raise BadRequest(f"{path}: line {line}: column {column!r} is {values[line]}: a row is in [0, 2**31)")
    return values.to_list()
