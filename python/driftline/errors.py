"""The one exception tree of driftline; each class carries the HTTP status it maps to."""

from __future__ import annotations

from driftline._core import CoreError, DriftInputError, QueueClosed, QueueFull

__all__ = [
    "BadRequest",
    "ConfigError",
    "CoreError",
    "DriftInputError",
    "DriftlineError",
    "InferenceFailed",
    "InferenceTimeout",
    "ModelNotFound",
    "ModelNotReady",
    "PayloadTooLarge",
    "QueueClosed",
    "QueueFull",
    "ServerBusy",
]


class DriftlineError(Exception):
    """Base of every error driftline reports to a user."""

    http_status: int = 500


class BadRequest(DriftlineError):
    """The request is malformed: wrong input name, datatype, shape, or body."""

    http_status = 400


class ConfigError(DriftlineError):
    """A configuration file or setting is invalid; the message names the file and key."""

    http_status = 400


class ModelNotFound(DriftlineError):
    """No such model or version in the repository."""

    http_status = 404


class ModelNotReady(DriftlineError):
    """The model exists but is not loaded (or is being unloaded)."""

    http_status = 503


class PayloadTooLarge(DriftlineError):
    """The request body is over the configured limit."""

    http_status = 413


class ServerBusy(DriftlineError):
    """The model's queue is full or closed; the client should retry later."""

    http_status = 503


class InferenceTimeout(DriftlineError):
    """The request waited in the queue past its timeout and was never run."""

    http_status = 504


class InferenceFailed(DriftlineError):
    """The backend raised while running a batch."""

    http_status = 500
