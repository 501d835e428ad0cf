"""Secrets the server makes once and keeps in the store (migration 11 in :mod:`driftline.store.db`): every worker
and every restart reads the same value, so what one signed another checks."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = ["SECRET_BYTES", "secret"]

#: Length of a fresh secret: 256 bits, as much as HMAC-SHA256 can use.
SECRET_BYTES: Final = 32


def secret(db: Database, name: str) -> bytes:
    """The secret called ``name``: made (random) by the first process that asks, read by every later one.

    ``INSERT ... ON CONFLICT DO NOTHING`` then a read: two workers asking at once both read the one value that
    landed first.
    """
    db.execute(
        "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (name, secrets.token_bytes(SECRET_BYTES)),
    )
    rows = db.query("SELECT value FROM secrets WHERE name = ?", (name,))
    value: bytes = rows[0]["value"]
    return value
