"""Labels joined to captured rows: whichever arrived first, a row is labeled once both exist.

A captured row takes the label of its (request_id, row); failing that, the label of its entity (a label of an
entity labels every captured row of that entity that has no label of its own). Capture order is the capture
timestamp, ties in the order of the frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import polars as pl

from driftline.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.store.feedback import Feedback

__all__ = ["KEY_COLUMNS", "Joined", "Labels", "join"]

#: The columns of a captured frame the join reads.
KEY_COLUMNS = ("request_id", "row", "model", "version", "ts", "entity")
_TARGET = "target"
_LABELED = "labeled"


@dataclass(frozen=True, slots=True)
class Joined:
    """Captured rows and their labels.

    Attributes:
        rows: The labeled captured rows, in capture order: the captured columns and ``target`` (the label).
        captures: Every captured row in capture order: version, ts, the outputs (``out.*``, for estimates of
            quality without labels) and ``labeled`` (windows' coverage).
        captured: Captured rows.
        labeled: Captured rows with a label (len(rows)).
        unmatched: Labels whose key (request id and row, or entity) no captured row has.
    """

    rows: pl.DataFrame
    captures: pl.DataFrame
    captured: int
    labeled: int
    unmatched: int

    @property
    def coverage(self) -> float:
        """labeled / captured (0 without captured rows)."""
        return self.labeled / self.captured if self.captured else 0.0


class Labels:
    """A model's labels as the frames the join takes, built once for any number of captured frames (the labeled
    export joins segment by segment)."""

    def __init__(self, labels: Sequence[Feedback]) -> None:
        """Index ``labels`` by (request_id, row) and by entity; a key given twice keeps its last label."""
        by_request = [f for f in labels if f.request_id is not None]
        by_entity = [f for f in labels if f.entity is not None]
        self.requests = pl.DataFrame(
            {
                "request_id": [f.request_id for f in by_request],
                "row": [f.row for f in by_request],
                "_request_target": [f.target for f in by_request],
            },
            schema={"request_id": pl.String, "row": pl.Int32, "_request_target": pl.String},
        ).unique(["request_id", "row"], keep="last", maintain_order=True)
        self.entities = pl.DataFrame(
            {"entity": [f.entity for f in by_entity], "_entity_target": [f.target for f in by_entity]},
            schema={"entity": pl.String, "_entity_target": pl.String},
        ).unique(["entity"], keep="last", maintain_order=True)

    @functools.cached_property
    def _kind(self) -> _Kind:
        return _kind(_values(pl.concat([self.requests["_request_target"], self.entities["_entity_target"]])))

    def target_type(self) -> pl.DataType:
        """The type of ``target`` in every frame :meth:`labeled` gives with ``uniform`` (a file written segment
        by segment has one schema): decided over all the labels, as :func:`join` decides it over labeled rows."""
        return _TYPES[self._kind]

    def attach(self, captured: pl.DataFrame) -> pl.DataFrame:
        """Every captured row in capture order with its label's JSON text (``_json``, null when unlabeled).

        Raises:
            BadRequest: the frame lacks a key column, already has a ``target`` column, or holds several models.
        """
        for column in KEY_COLUMNS:
            if column not in captured.columns:
                raise BadRequest(f"captured rows: no column {column!r}")
        if _TARGET in captured.columns:
            raise BadRequest(f"captured rows: a column is named {_TARGET!r}, the name the join gives the label")
        if captured["model"].n_unique() > 1:
            raise BadRequest(f"captured rows hold {captured['model'].n_unique()} models: join one model's at a time")
        keyed = _keyed(captured)
        ordered = keyed.with_row_index("_order").sort(["ts", "_order"])
        return (
            ordered.join(self.requests, on=["request_id", "row"], how="left", maintain_order="left")
            .join(self.entities, on="entity", how="left", maintain_order="left")
            .with_columns(pl.coalesce("_request_target", "_entity_target").alias("_json"))
            .drop("_request_target", "_entity_target", "_order")
        )

    def labeled(self, captured: pl.DataFrame, *, uniform: bool = False) -> pl.DataFrame:
        """The labeled rows of ``captured`` in capture order, with ``target`` (of :meth:`target_type` when
        ``uniform``, else as these rows' labels decide).

        Raises:
            BadRequest: as :meth:`attach`.
        """
        both = self.attach(captured)
        rows = both.filter(both["_json"].is_not_null())
        return rows.with_columns(_decode(rows["_json"], self._kind if uniform else None)).drop("_json")


def _keyed(captured: pl.DataFrame) -> pl.DataFrame:
    return captured.with_columns(pl.col("row").cast(pl.Int32), pl.col("entity").cast(pl.String))


def join(captured: pl.DataFrame, labels: Sequence[Feedback]) -> Joined:
    """Join one model's captured rows to its labels (a key given twice keeps its last label).

    Raises:
        BadRequest: the frame lacks a key column, already has a ``target`` column, or holds several models.
    """
    index = Labels(labels)
    both = index.attach(captured)
    labeled_mask = both["_json"].is_not_null()
    rows = both.filter(labeled_mask)
    rows = rows.with_columns(_decode(rows["_json"]).alias(_TARGET)).drop("_json")
    keyed = _keyed(captured)
    unmatched = index.requests.join(keyed.select("request_id", "row"), on=["request_id", "row"], how="anti").height
    unmatched += index.entities.join(keyed.select("entity").drop_nulls(), on="entity", how="anti").height
    return Joined(
        rows=rows,
        captures=both.select("version", "ts", pl.col(r"^out\..*$"), labeled_mask.alias(_LABELED)),
        captured=captured.height,
        labeled=rows.height,
        unmatched=unmatched,
    )


_Kind = Literal["str", "int", "float", "json"]
_TYPES: dict[_Kind, pl.DataType] = {"str": pl.String(), "int": pl.Int64(), "float": pl.Float64(), "json": pl.String()}


def _values(texts: pl.Series) -> list[Any]:
    return msgspec.json.decode(("[" + ",".join(texts.to_list()) + "]").encode())  # type: ignore[no-any-return]


def _kind(values: list[Any]) -> _Kind:
    kinds = {type(v) for v in values}
    if kinds <= {str}:
        return "str"
    if kinds <= {int, bool}:
        return "int"
    if kinds <= {int, float}:
        return "float"
    return "json"


def _decode(texts: pl.Series, kind: _Kind | None = None) -> pl.Series:
    """The JSON targets as one typed column: String labels, Int64 (ints and bools), or Float64 (any float), as
    their values decide or as ``kind`` says.

    Labels of two kinds (strings and numbers) stay JSON text, which the metrics then refuse by name.
    """
    values = _values(texts)
    kind = kind or _kind(values)
    if kind == "json":
        return texts.alias(_TARGET)
    if kind == "int":
        values = [int(v) for v in values]
    return pl.Series(_TARGET, values, dtype=_TYPES[kind])
