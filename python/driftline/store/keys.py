"""Stored API keys: only each key's sha256 is kept; creating one is audited in the same transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from driftline.errors import Conflict
from driftline.security.keys import check_role, hash_key, new_key
from driftline.store.audit import AuditAction, AuditLog

if TYPE_CHECKING:
    from collections.abc import Iterable

    from driftline.store.db import Database

__all__ = ["ApiKeyRow", "KeyStore"]


class ApiKeyRow(msgspec.Struct, frozen=True):
    """A stored API key: only its sha256 is kept."""

    id: int
    name: str
    role: str
    sha256: str
    created_at: str
    revoked_at: str | None


class KeyStore:
    """Reads and writes the api_keys table (migration 3 in :mod:`driftline.store.db`)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    def api_keys(self) -> list[ApiKeyRow]:
        """Every stored key, revoked ones included."""
        return [ApiKeyRow(**dict(r)) for r in self.db.query("SELECT * FROM api_keys ORDER BY id")]

    def create_key(self, name: str, role: str, reserved: Iterable[str] = (), *, actor: str) -> str:
        """Make a new key, store only its hash under a unique name, and return the key (shown this once).

        The admin API and ``driftline keys create`` both come here, so every key is audited as ``key_created``
        (by ``actor``) in the same transaction that stores it.

        Raises:
            ValueError: an unknown role.
            Conflict: the name is empty, or taken by a stored key or one of ``reserved`` (the config file's).
        """
        check_role(role)
        if not name or name in set(reserved) or any(k.name == name for k in self.api_keys()):
            raise Conflict(f"a key named {name!r} exists already (or the name is empty)")
        key = new_key()
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO api_keys (name, role, sha256) VALUES (?, ?, ?)", (name, role, hash_key(key)))
            AuditLog(self.db).record(AuditAction.KEY_CREATED, "-", actor=actor, reason=f"{name}: {role}", conn=conn)
        return key

    def revoke_key(self, name: str) -> bool:
        """Revoke a key by name; False when there is no such live key."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE name = ? AND revoked_at IS NULL",
                (name,),
            )
            return cursor.rowcount == 1
