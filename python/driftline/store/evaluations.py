"""Offline evaluations of a model version (``driftline evaluate``), kept with the version so its status shows them.

Each row holds the quality report as JSON, its headline metrics, what was evaluated (artifact sha256, dataset path
and sha256, target column, rows) and, for a binary classifier, the (label, positive-class score) pairs as a Parquet
blob: the reference data a performance estimate without labels (CBPE) calibrates on. At most
:data:`REFERENCE_MAX_ROWS` pairs are kept: a larger set keeps a seeded uniform sample of that many rows, in file order.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import polars as pl

from driftline.store.audit import AuditAction, AuditLog

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from driftline.store.db import Database, Row

__all__ = ["REFERENCE_MAX_ROWS", "Evaluation", "EvaluationStore", "EvaluationSummary", "NewEvaluation"]

#: Pairs of (label, score) stored per evaluation; a CBPE calibration needs thousands, not millions.
REFERENCE_MAX_ROWS = 100_000
_SAMPLE_SEED = 0
_SUMMARY = "id, created_at, dataset, dataset_sha256, rows, target, sha256, metrics"


class EvaluationSummary(msgspec.Struct, frozen=True):
    """What a version's status shows of its latest evaluation: when, on what, and the headline metrics.

    Attributes:
        id: The evaluation's id.
        created_at: When it was stored (UTC).
        dataset: The labeled file, as given to ``driftline evaluate`` (made absolute).
        dataset_sha256: The file's sha256, so the same set can be recognised later.
        rows: Rows scored and compared with their labels.
        target: The column holding the labels.
        sha256: The artifact evaluated (the version's sha256 then).
        metrics: Headline metrics (accuracy, f1_macro, roc_auc / mae, rmse, r2); null where undefined.
    """

    id: int
    created_at: str
    dataset: str
    dataset_sha256: str
    rows: int
    target: str
    sha256: str
    metrics: dict[str, float | None]


class Evaluation(EvaluationSummary, frozen=True):
    """A stored evaluation: its summary, the model version, the task and the whole quality report."""

    model: str
    version: int
    task: str
    report: dict[str, Any]
    reference_rows: int


class NewEvaluation(msgspec.Struct, frozen=True):
    """An evaluation to store; ``report`` is the quality report's JSON, ``labels`` 1 where a row is of the
    positive class, ``scores`` its positive-class probability (both None but for a binary classifier)."""

    model: str
    version: int
    sha256: str
    dataset: str
    dataset_sha256: str
    rows: int
    target: str
    task: str
    report: bytes
    metrics: dict[str, float | None]
    labels: Any = None
    scores: Any = None


class EvaluationStore:
    """Reads and writes the evaluations table (the evaluations migration in :mod:`driftline.store.db`)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    def add(self, new: NewEvaluation, actor: str) -> Evaluation:
        """Store an evaluation and its audit event in one transaction.

        Raises:
            ValueError: labels and scores of different lengths, or only one of the two given.
        """
        blob, kept = _reference_blob(new.labels, new.scores)
        sql = (
            "INSERT INTO evaluations (model, version, sha256, dataset, dataset_sha256, rows, target, task, report,"
            " metrics, reference, reference_rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        metrics = msgspec.json.encode(new.metrics).decode()
        params = (new.model, new.version, new.sha256, new.dataset, new.dataset_sha256, new.rows, new.target)
        with self.db.transaction() as conn:
            eid = conn.execute(sql, (*params, new.task, new.report.decode(), metrics, blob, kept)).lastrowid or 0
            AuditLog(self.db).record(
                AuditAction.EVALUATE,
                new.model,
                actor=actor,
                version_after=str(new.version),
                sha256=new.sha256,
                reason=f"evaluation {eid}: {new.dataset} ({new.rows} rows, target {new.target!r}): "
                + ", ".join(f"{k}={_text(v)}" for k, v in new.metrics.items()),
                conn=conn,
            )
        stored = self._get(eid)
        assert stored is not None
        return stored

    def latest(self, model: str, version: int) -> Evaluation | None:
        """The newest evaluation of one version, if there is one."""
        rows = self._latest(model, version, "*")
        return _evaluation(rows[0]) if rows else None

    def summary(self, model: str, version: int) -> EvaluationSummary | None:
        """The newest evaluation's summary (the report and the reference blob are not read)."""
        rows = self._latest(model, version, _SUMMARY)
        return _summary(rows[0]) if rows else None

    def reference(self, model: str, version: int) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
        """The (labels, scores) pairs of the newest evaluation of a binary classifier: labels 1 for the positive
        class, else 0; scores its probability. None when the version has no evaluation, or its newest is no binary
        classifier's."""
        rows = self._latest(model, version, "reference")
        if not rows or rows[0]["reference"] is None:
            return None
        frame = pl.read_parquet(io.BytesIO(rows[0]["reference"]))
        return frame["label"].to_numpy().astype(np.int64), frame["score"].to_numpy().astype(np.float64)

    def _latest(self, model: str, version: int, columns: str) -> list[Row]:
        return self.db.query(
            f"SELECT {columns} FROM evaluations WHERE model = ? AND version = ? ORDER BY id DESC LIMIT 1",  # noqa: S608 - fixed fragments
            (model, version),
        )

    def _get(self, eid: int) -> Evaluation | None:
        rows = self.db.query("SELECT * FROM evaluations WHERE id = ?", (eid,))
        return _evaluation(rows[0]) if rows else None


def _text(value: float | None) -> str:
    return "null" if value is None else f"{value:.6g}"


def _summary(row: Row) -> EvaluationSummary:
    fields = {k: row[k] for k in EvaluationSummary.__struct_fields__}
    return EvaluationSummary(**{**fields, "metrics": msgspec.json.decode(row["metrics"])})


def _evaluation(row: Row) -> Evaluation:
    fields = {k: row[k] for k in Evaluation.__struct_fields__}
    fields["metrics"] = msgspec.json.decode(row["metrics"])
    fields["report"] = msgspec.json.decode(row["report"])
    return Evaluation(**fields)


def _reference_blob(labels: Any, scores: Any) -> tuple[bytes | None, int]:
    """The pairs as Parquet (a seeded sample of REFERENCE_MAX_ROWS of them when there are more), and their count."""
    if labels is None and scores is None:
        return None, 0
    if labels is None or scores is None or len(labels) != len(scores):
        raise ValueError("a reference is labels and scores of the same length")
    y = np.asarray(labels, dtype=np.int8)
    p = np.asarray(scores, dtype=np.float64)
    if len(y) > REFERENCE_MAX_ROWS:
        keep = np.sort(np.random.default_rng(_SAMPLE_SEED).choice(len(y), REFERENCE_MAX_ROWS, replace=False))
        y, p = y[keep], p[keep]
    out = io.BytesIO()
    pl.DataFrame({"label": y, "score": p}).write_parquet(out)
    return out.getvalue(), len(y)
