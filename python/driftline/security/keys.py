"""API keys and roles.

Keys are 256-bit random tokens, so a plain sha256 of the key is enough to store them safely (a slow password hash
guards low-entropy secrets, and would cost milliseconds on every inference request). Only the hash is ever stored:
in config.toml as ``sha256``, or in the SQLite store for keys created over the admin API.

Roles are ordered; each includes the ones before it: ``viewer`` reads status, ``predictor`` also runs inference,
``operator`` also loads, unloads, routes and proposes, ``admin`` also approves, promotes, rolls back and manages keys.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

import msgspec

from driftline.errors import Forbidden, Unauthorized
from driftline.security.digests import is_sha256

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ROLES",
    "KeyRing",
    "Principal",
    "check_role",
    "check_sha256",
    "hash_key",
    "key_from_headers",
    "new_key",
]

ROLES: tuple[str, ...] = ("viewer", "predictor", "operator", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}


def check_role(role: str) -> str:
    """Validate a role name.

    Raises:
        ValueError: naming the role and the known ones.
    """
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return role


def check_sha256(value: str) -> str:
    """Validate a key hash as 64 lower-case hex digits."""
    if not is_sha256(value):
        raise ValueError("sha256 must be 64 lower-case hex digits (driftline keys hash KEY prints it)")
    return value


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key (shown once, then only its hash is kept)."""
    return "dl_" + secrets.token_urlsafe(32)


class Principal(msgspec.Struct, frozen=True):
    """Who a request is: the key's name and role."""

    name: str
    role: str

    def allows(self, role: str) -> bool:
        """Whether this principal's role includes ``role``."""
        return _RANK[self.role] >= _RANK[role]


def key_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The presented key: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (raw ASGI header pairs)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key":
            return value.decode("latin-1").strip() or None
    return None


class KeyRing:
    """The live set of keys, by hash; rebuilt whole when keys change (an attribute swap, no lock on lookups)."""

    def __init__(self) -> None:
        """Start empty."""
        self._by_hash: dict[str, Principal] = {}

    def replace(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Install the keys given as (name, role, sha256)."""
        self._by_hash = {sha: Principal(name, role) for name, role, sha in keys}

    def __len__(self) -> int:
        return len(self._by_hash)

    def entries(self) -> list[tuple[str, str, str]]:
        """The live keys as (name, role, sha256): what a dashboard session is checked against on every page."""
        return [(p.name, p.role, sha) for sha, p in self._by_hash.items()]

    def authenticate(self, headers: Iterable[tuple[bytes, bytes]], role: str) -> Principal:
        """The principal behind a request, checked for ``role``.

        Raises:
            Unauthorized: no key, or an unknown or revoked one (401).
            Forbidden: the key's role does not include ``role`` (403).
        """
        key = key_from_headers(headers)
        if key is None:
            raise Unauthorized("an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        principal = self._by_hash.get(hash_key(key))
        if principal is None:
            raise Unauthorized("the API key is not known (or was revoked)")
        if not principal.allows(role):
            raise Forbidden(f"key {principal.name!r} has role {principal.role!r}; this needs {role!r} or above")
        return principal
