"""The JSON line format: one object per record, the request id of the request being served, access fields.

Text stays the human format (``LOG_FORMAT``); both formatters are set in cli/logs.py's ``dictConfig`` dict, which
every worker process applies too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import msgspec

from driftline.logs.access import REQUEST_ID

__all__ = ["LOG_FORMAT", "JsonFormatter"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_encoder = msgspec.json.Encoder(enc_hook=str)  # an odd value in an access field is written as its str()


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "pid", "request_id"?, ...access fields, "exc"?}`` on one line.

    ``request_id`` is the record's own (``extra={"request_id": ...}``) or the one of the request whose task logs
    it (:data:`REQUEST_ID`), so a 500's traceback carries the id its answer echoed. An access line's fields come
    as ``extra={"access": {...}}``. A traceback is the ``exc`` string (its newlines escaped: still one line).
    """

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object, no newline inside."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker process
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            line.update(access)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _encoder.encode(line).decode()
