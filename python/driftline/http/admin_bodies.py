"""Request bodies of the admin API (:mod:`driftline.http.admin`): msgspec structs that refuse unknown fields, so a
misspelt field is a 400 naming it rather than silently ignored."""

from __future__ import annotations

import msgspec

from driftline.lifecycle import ApprovalRule  # noqa: TC001 - msgspec needs it at run time
from driftline.serving.routing import Canary, Shadow, Split  # noqa: TC001 - msgspec needs them at run time

__all__ = ["AliasBody", "KeyBody", "ProposalBody", "ReasonBody", "RoutingBody", "VersionBody"]


class VersionBody(msgspec.Struct, forbid_unknown_fields=True):
    """A version to load or unload (none = the whole model)."""

    version: int | None = None


class AliasBody(msgspec.Struct, forbid_unknown_fields=True):
    """Where an alias should point."""

    version: int
    reason: str | None = None


class ReasonBody(msgspec.Struct, forbid_unknown_fields=True):
    """Why (kept in the audit log)."""

    reason: str | None = None


class RoutingBody(msgspec.Struct, forbid_unknown_fields=True):
    """A routing policy and why it changes."""

    canary: Canary | None = None
    split: Split | None = None
    shadow: Shadow | None = None
    reason: str | None = None


class ProposalBody(msgspec.Struct, forbid_unknown_fields=True):
    """A candidate version for an alias, and the rule its approval waits for."""

    version: int
    alias: str = "champion"
    rule: ApprovalRule | None = None
    reason: str | None = None


class KeyBody(msgspec.Struct, forbid_unknown_fields=True):
    """A new API key's name and role."""

    name: str
    role: str
