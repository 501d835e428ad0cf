"""One log format for everything the server process and its workers log: driftline, uvicorn, litestar.

The same dict configures the process ``driftline serve`` runs in and is handed to uvicorn as ``log_config``, which
applies it again in every worker process it starts. ``logs.format`` chooses the human text line or one JSON object
per line (driftline/logs/format.py; docs/logging.md).
"""

from __future__ import annotations

import logging.config
from typing import Any

from driftline.logs.format import LOG_FORMAT

__all__ = ["LOG_FORMAT", "configure_logging", "log_config"]

# Loggers that come with handlers (and formats) of their own: here they only pass records up to the root's handler.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar", "granian", "_granian")


def log_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: one stderr handler on the root logger, every record in ``fmt``
    ("text": `LOG_FORMAT`; "json": `driftline.logs.format.JsonFormatter`)."""
    formatter: dict[str, Any] = (
        {"()": "driftline.logs.format.JsonFormatter"} if fmt == "json" else {"format": LOG_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"driftline": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "driftline", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in _OWN_HANDLERS},
    }


def configure_logging(level: str, fmt: str = "text") -> None:
    """Apply `log_config` to this process."""
    logging.config.dictConfig(log_config(level, fmt))
