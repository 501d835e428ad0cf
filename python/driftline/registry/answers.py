"""What the registry sync answers, as msgspec Structs: its status, and what one pass changed.

These are the bodies of ``GET /v1/admin/registry`` and ``POST /v1/admin/registry/sync`` (so the OpenAPI schema
documents them); versions are strings there, as everywhere in the admin API.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "AliasChange",
    "AliasRefusal",
    "ChangedVersion",
    "FailedVersion",
    "HeldVersion",
    "LoadFailure",
    "SyncOff",
    "SyncReport",
    "SyncState",
    "SyncStatus",
    "SyncWoken",
]

# starting: no poll yet; following: another process leads, this one loads what it placed.
SyncState = Literal["starting", "syncing", "ok", "following", "unreachable", "error"]


class FailedVersion(msgspec.Struct):
    """A version from the source that failed and is not tried again until the source states another digest."""

    model: str
    version: str
    sha256: str | None


class HeldVersion(msgspec.Struct):
    """A version deleted at the source that stays here, and why (an alias, route or pin; the last version)."""

    model: str
    version: str
    reason: str


class ChangedVersion(msgspec.Struct):
    """A version placed here that the source now states other bytes for; the version placed here stays."""

    model: str
    version: str
    source_sha256: str


class SyncStatus(msgspec.Struct):
    """The sync's state: the source, whether this process leads, the last error and when it tries next."""

    source: str
    state: SyncState
    leader: bool
    last_error: str | None
    last_success_s_ago: float | None
    next_attempt_in_s: float | None
    failed_versions: list[FailedVersion]
    deleted_but_held: list[HeldVersion]
    changed_at_source: list[ChangedVersion]
    # What the last listing skipped (a bad config.toml, a sha256 that is no digest ...).
    problems: list[str]


class SyncOff(msgspec.Struct):
    """The status when no registry source is configured."""

    source: None = None
    state: Literal["off"] = "off"


class LoadFailure(msgspec.Struct):
    """A version one pass could not fetch, place or load, and why; it takes no traffic."""

    model: str
    version: str
    reason: str


class AliasChange(msgspec.Struct):
    """An alias the pass moved to what the source states; ``version`` None: deleted, as at the source."""

    model: str
    alias: str
    version: str | None


class AliasRefusal(msgspec.Struct):
    """An alias value (or, ``version`` None, a deletion) from the source that the checks here refused, and why."""

    model: str
    alias: str
    version: str | None
    reason: str


class SyncReport(msgspec.Struct):
    """What one pass changed; ``loaded`` and ``deleted`` name versions as ``model/version``."""

    loaded: list[str] = msgspec.field(default_factory=list)
    failed: list[LoadFailure] = msgspec.field(default_factory=list)
    aliases: list[AliasChange] = msgspec.field(default_factory=list)
    refused: list[AliasRefusal] = msgspec.field(default_factory=list)
    deleted: list[str] = msgspec.field(default_factory=list)


class SyncWoken(msgspec.Struct):
    """The answer of a process that does not lead the sync: its next poll runs now instead."""

    woken: bool = True
