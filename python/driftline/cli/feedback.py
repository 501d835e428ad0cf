"""``driftline feedback upload MODEL FILE``: ground-truth labels from a CSV or Parquet file, sent to a server.

The file is checked whole, against the model's task as the server states it, before the first label is sent; it
then goes in batches of at most the server's ``feedback.max_items``. One JSON line sums up what was stored, and how
many labels name no captured row as of the upload (null when the server left that count out).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from driftline.cli.client import ApiError, add_client_options, call
from driftline.feedback import read_feedback_file

if TYPE_CHECKING:
    import argparse

    from driftline.store.feedback import Feedback

__all__ = ["add_parser"]

_KEY_COLUMNS = (
    ("--id-column", "the column of request ids"),
    ("--row-column", "the column of row indexes within a request (default: row 0)"),
    ("--entity-column", "the column of entity keys (parameters.entity)"),
)


def _wire(item: Feedback) -> dict[str, Any]:
    """A label as the feedback body spells it (the target back from the JSON text it is kept as)."""
    if item.entity is not None:
        return {"entity": item.entity, "target": json.loads(item.target)}
    return {"id": item.request_id, "row": item.row, "target": json.loads(item.target)}


def _upload(args: argparse.Namespace) -> int:
    path = f"/v1/models/{urllib.parse.quote(args.model, safe='')}/feedback"
    terms = call(args, "GET", path)
    items = read_feedback_file(
        args.file, args.id_column, args.target_column, args.row_column, args.entity_column, task=terms["task"]
    )
    size = int(terms["max_items"])
    stored = replaced = 0
    unmatched: int | None = 0  # None once a batch's count was left out (a large capture history)
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        try:
            answer = call(args, "POST", path, {"feedback": [_wire(item) for item in batch]})
        except ApiError as exc:
            # Each batch is one transaction: say which labels went in before the refusal.
            raise ApiError(f"{exc} (lines {start}..{start + len(batch) - 1}; the {start} before are stored)") from None
        stored += answer["stored"]
        replaced += answer["replaced"]
        counted = answer.get("unmatched")
        unmatched = None if unmatched is None or counted is None else unmatched + counted
    batches = -(-len(items) // size)
    summary = {
        "model": args.model,
        "labels": len(items),
        "stored": stored,
        "replaced": replaced,
        "unmatched": unmatched,
        "batches": batches,
    }
    print(json.dumps(summary))
    return 0


def add_parser(sub: Any) -> None:
    """``driftline feedback upload``, under ``sub`` (the main parser's subparsers)."""
    feedback = sub.add_parser("feedback", help="ground-truth labels of served predictions")
    feedback_sub = feedback.add_subparsers(dest="feedback_command", required=True)
    upload = add_client_options(
        feedback_sub.add_parser(
            "upload",
            help="send the labels of a .csv or .parquet file to a server",
            description="Each line labels one captured row: by request id (and row, default 0) or by entity.",
        )
    )
    upload.add_argument("model", help="the model the labels are for")
    upload.add_argument("file", help="a .csv or .parquet file")
    upload.add_argument("--target-column", required=True, help="the column of true labels or values")
    # A line is keyed by a request id (and its row) or by an entity: one of the two key columns is needed.
    for flag, text in _KEY_COLUMNS:
        upload.add_argument(flag, help=text)
    upload.set_defaults(func=_upload)
