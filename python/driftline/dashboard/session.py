"""Dashboard sessions: a signed, expiring token in a cookie, valid on every worker and across restarts.

The token is ``base64url(payload) "." base64url(HMAC-SHA256(secret, payload))``; the payload is JSON with the key's
name and role, the expiry (epoch seconds) and ``kid``, an HMAC of the key's stored hash under the same secret. The
secret lives in the store (:func:`driftline.store.secrets.secret`), so every worker checks what any worker signed.
``kid`` ties a session to one key without putting its hash in the cookie: once that key is revoked (or its role
changed) the key ring no longer holds it and the session stops working at the next key reload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["COOKIE", "SECRET_NAME", "SESSION_TTL_S", "Session", "SessionInvalid", "holder", "issue", "key_id", "verify"]

#: The cookie's name (Path=/ui, HttpOnly, SameSite=Strict).
COOKIE: Final = "driftline_session"
#: The store's name for the signing secret.
SECRET_NAME: Final = "dashboard_session"  # noqa: S105 - the secret's name in the store, not a secret
#: How long a sign-in lasts: a working day.
SESSION_TTL_S: Final = 8 * 3600
_MAX_TOKEN: Final = 2048  # a real token is ~200 bytes: a longer cookie is refused before any decoding


class SessionInvalid(Exception):
    """The token is malformed, tampered with, signed with another secret, or expired (the reason says which)."""


class Session(msgspec.Struct, frozen=True):
    """What a valid token says: the key's name and role, when it expires, and the key id."""

    name: str
    role: str
    exp: int
    kid: str


_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(Session)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(secret: bytes, sha256: str) -> str:
    """The id a session names its key by: an HMAC of the key's stored hash (the hash itself stays server-side)."""
    return hmac.new(secret, b"key:" + sha256.encode(), hashlib.sha256).hexdigest()[:32]


def _sign(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"session:" + payload, hashlib.sha256).digest()


def issue(secret: bytes, name: str, role: str, sha256: str, now: float, ttl_s: float = SESSION_TTL_S) -> str:
    """A token for the key ``name`` (``role``, stored hash ``sha256``), valid until ``now + ttl_s``."""
    payload = _encode.encode(Session(name=name, role=role, exp=int(now + ttl_s), kid=key_id(secret, sha256)))
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


def verify(secret: bytes, token: str, now: float) -> Session:
    """The session a token holds, checked: signature first (constant time), then expiry.

    Raises:
        SessionInvalid: malformed, bad signature, or expired.
    """
    if len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise SessionInvalid("malformed session token")
    body, _, mac = token.partition(".")
    try:
        payload, signature = _unb64(body), _unb64(mac)
    except (binascii.Error, ValueError):
        raise SessionInvalid("malformed session token") from None
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        raise SessionInvalid("the session token's signature does not match")
    try:
        session = _decode.decode(payload)
    except msgspec.DecodeError:
        raise SessionInvalid("malformed session payload") from None
    if session.exp <= now:
        raise SessionInvalid("the session expired")
    return session


def holder(secret: bytes, session: Session, keys: Iterable[tuple[str, str, str]]) -> bool:
    """Whether a live key (``keys``: name, role, sha256) is the one the session was issued for, same role."""
    return any(
        name == session.name and role == session.role and hmac.compare_digest(key_id(secret, sha), session.kid)
        for name, role, sha in keys
    )
