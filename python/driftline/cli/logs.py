"""One log format for everything the server process and its workers log: driftline, uvicorn, litestar.

The same dict configures the process ``driftline serve`` runs in and is handed to uvicorn as ``log_config``, which
applies it again in every worker process it starts.
"""

from __future__ import annotations

import logging.config
from typing import Any

__all__ = ["LOG_FORMAT", "configure_logging", "log_config"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that come with handlers (and formats) of their own: here they only pass records up to the root's handler.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar", "granian", "_granian")


def log_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: one stderr handler on the root logger, every record in `LOG_FORMAT`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"driftline": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "driftline", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in _OWN_HANDLERS},
    }


def configure_logging(level: str) -> None:
    """Apply `log_config` to this process."""
    logging.config.dictConfig(log_config(level))
