"""The one exception tree of driftline; each class carries the HTTP status it maps to."""

from __future__ import annotations

from driftline._core import CoreError, DriftInputError, QueueClosed, QueueFull

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "CoreError",
    "DriftInputError",
    "DriftlineError",
    "Forbidden",
    "InferenceFailed",
    "InferenceTimeout",
    "IntegrityError",
    "JobNotFound",
    "KeyNotFound",
    "ModelNotFound",
    "ModelNotReady",
    "NotFound",
    "PayloadTooLarge",
    "ProposalNotFound",
    "QueueClosed",
    "QueueFull",
    "ReferenceNotFound",
    "RegistryUnavailable",
    "RequestTimeout",
    "ServerBusy",
    "StoreUnavailable",
    "Unauthorized",
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


class NotFound(DriftlineError):
    """What the request names does not exist (a 404); each kind of thing has its own subclass."""

    http_status = 404


class ModelNotFound(NotFound):
    """No such model or version in the repository."""


class JobNotFound(NotFound):
    """No scoring job with that id."""


class KeyNotFound(NotFound):
    """No live stored API key with that name."""


class ProposalNotFound(NotFound):
    """No proposal with that id."""


class ReferenceNotFound(NotFound):
    """The model version has no reference data, so there is no drift report for it."""


class ModelNotReady(DriftlineError):
    """The model exists but is not loaded (or is being unloaded)."""

    http_status = 503


class PayloadTooLarge(DriftlineError):
    """The request body is over the configured limit."""

    http_status = 413


class ServerBusy(DriftlineError):
    """The model's queue is full or closed; the client should retry later."""

    http_status = 503


class RequestTimeout(DriftlineError):
    """The client did not send its request (its body) within the server's deadline."""

    http_status = 408


class InferenceTimeout(DriftlineError):
    """The request waited in the queue past its timeout and was never run."""

    http_status = 504


class InferenceFailed(DriftlineError):
    """The backend raised while running a batch."""

    http_status = 500


class Conflict(DriftlineError):
    """The request is well-formed but the serving state refuses it (an alias at an unloaded version, a rule unmet)."""

    http_status = 409


class IntegrityError(DriftlineError):
    """An artifact is not what its registry says it is (sha256 mismatch, no model file, truncated)."""

    http_status = 409


class RegistryUnavailable(DriftlineError):
    """The registry source cannot be reached or read; the sync changes nothing and retries with backoff."""

    http_status = 503


class StoreUnavailable(DriftlineError):
    """The shared database (PostgreSQL) cannot be reached now; the next statement reconnects."""

    http_status = 503


class Unauthorized(DriftlineError):
    """No API key, or one that is not known."""

    http_status = 401


class Forbidden(DriftlineError):
    """The API key's role does not allow this route."""

    http_status = 403
