"""Request bodies and path parameters of the admin API (:mod:`driftline.http.admin`): msgspec structs that refuse
unknown fields, so a misspelt field is a 400 naming it rather than silently ignored; path parameters with the bounds
the server enforces, so the OpenAPI schema states them."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.params import PathParameter

from driftline.lifecycle.approval import ApprovalRule  # noqa: TC001 - msgspec needs it at run time
from driftline.repository.names import ALIAS_MAX_LENGTH, ALIAS_PATTERN
from driftline.serving.routing import Canary, Shadow, Split  # noqa: TC001 - msgspec needs them at run time

__all__ = [
    "AliasBody",
    "AliasName",
    "KeyBody",
    "ProposalBody",
    "ReasonBody",
    "RoutingBody",
    "RowId",
    "VersionBody",
]

#: A stored row id (a proposal, an experiment). SQLite's integers are 64-bit, and a larger one in a path was a 500
#: (OverflowError); the bound is 2**53 - 1, the largest integer JSON tools carry exactly (2**63 - 1 rounds up to a
#: float past SQLite's range).
RowId = Annotated[int, PathParameter(ge=1, le=2**53 - 1)]
#: The alias rule of :mod:`driftline.repository.names`, as the schema documents it.
AliasName = Annotated[
    str,
    PathParameter(pattern=f"^{ALIAS_PATTERN}$", max_length=ALIAS_MAX_LENGTH),
]


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
