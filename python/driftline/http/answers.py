"""Answer bodies of the admin API (:mod:`driftline.http.admin`) and the repository routes shared with Triton's
(:mod:`driftline.http.triton`): msgspec structs, so the OpenAPI schema documents every body and schemathesis checks
the server against it.

Answers the lifecycle and the stores compute are typed where they are computed (lifecycle/, store/, registry/);
these are the ones the HTTP layer assembles itself. Each keeps the JSON the API has always
answered: a field absent from an answer is ``UNSET`` (left out), one that is ``null`` stays ``None``.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from driftline.store.evaluations import EvaluationSummary  # noqa: TC001 - msgspec needs it at run time
from driftline.store.proposals import Proposal

__all__ = [
    "AliasDeleted",
    "KeyInfo",
    "KeyRevoked",
    "LoadedVersions",
    "ModelVersions",
    "NewKey",
    "ProposalStatus",
]


class ModelVersions(msgspec.Struct, frozen=True):
    """The versions of a model loaded after a load or unload."""

    name: str
    versions: list[str]


class LoadedVersions(ModelVersions, frozen=True):
    """The versions loaded after an admin load, and each version that failed with why."""

    failed: dict[str, str]


class AliasDeleted(msgspec.Struct, frozen=True):
    """An alias removed."""

    model: str
    alias: str
    deleted: bool


class ProposalStatus(Proposal, frozen=True):
    """A proposal, whether its rule passes now, the shadow evidence for that (``rule_evidence``; ``evidence`` is
    the promotion record kept at approval), and the proposed version's latest offline evaluation (null when none)."""

    rule_passes: bool
    rule_evidence: str
    evaluation: EvaluationSummary | None


class KeyInfo(msgspec.Struct, frozen=True):
    """An API key's name and role, never the key; a stored key also has when it was created and revoked."""

    name: str
    role: str
    source: Literal["config", "store"]
    created_at: str | UnsetType = UNSET
    revoked_at: str | UnsetType | None = UNSET


class NewKey(msgspec.Struct, frozen=True):
    """A created API key: the only answer that ever holds the key."""

    name: str
    role: str
    key: str


class KeyRevoked(msgspec.Struct, frozen=True):
    """A stored API key revoked."""

    name: str
    revoked: bool
