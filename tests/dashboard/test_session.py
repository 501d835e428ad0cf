"""Dashboard session tokens: what is signed holds, anything changed, expired or signed with another secret does not,
and a session names the one key it was issued for."""

from __future__ import annotations

import base64
import json

import pytest

from driftline.dashboard.session import SESSION_TTL_S, Session, SessionInvalid, holder, issue, key_id, verify
from driftline.security.keys import hash_key
from driftline.store.db import open_database
from driftline.store.secrets import SECRET_BYTES, secret

SECRET = b"s" * 32
SHA = hash_key("dl_some_key")
NOW = 1_800_000_000.0


def test_a_token_verifies_until_it_expires():
    token = issue(SECRET, "ops", "operator", SHA, NOW, ttl_s=60)
    assert verify(SECRET, token, NOW + 59) == Session("ops", "operator", int(NOW + 60), key_id(SECRET, SHA))
    with pytest.raises(SessionInvalid, match="expired"):
        verify(SECRET, token, NOW + 60)
    assert verify(SECRET, issue(SECRET, "ops", "operator", SHA, NOW), NOW + SESSION_TTL_S - 1).role == "operator"


def test_another_secret_refuses_the_token():
    token = issue(SECRET, "ops", "operator", SHA, NOW)
    with pytest.raises(SessionInvalid, match="signature"):
        verify(b"t" * 32, token, NOW)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_tampered_payload_or_signature_is_refused():
    token = issue(SECRET, "viewer", "viewer", SHA, NOW)
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["role"] = "admin"  # the classic: raise one's own role
    forged = f"{_b64(json.dumps(payload).encode())}.{mac}"
    with pytest.raises(SessionInvalid, match="signature"):
        verify(SECRET, forged, NOW)
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    with pytest.raises(SessionInvalid):
        verify(SECRET, f"{body}.{flipped}", NOW)


@pytest.mark.parametrize("token", ["", ".", "a.b.c", "no-dot", "!!!.???", "x" * 5000, "e30.", "é.é"])
def test_malformed_tokens_are_refused_not_raised(token):
    with pytest.raises(SessionInvalid):
        verify(SECRET, token, NOW)


def test_a_signed_payload_that_is_no_session_is_refused():
    import hashlib
    import hmac

    payload = b'{"name": "x"}'
    mac = hmac.new(SECRET, b"session:" + payload, hashlib.sha256).digest()
    with pytest.raises(SessionInvalid, match="payload"):
        verify(SECRET, f"{_b64(payload)}.{_b64(mac)}", NOW)


def test_the_session_holds_only_while_its_key_is_in_the_ring_with_the_same_role():
    session = verify(SECRET, issue(SECRET, "ops", "operator", SHA, NOW), NOW)
    assert holder(SECRET, session, [("other", "admin", hash_key("x")), ("ops", "operator", SHA)])
    assert not holder(SECRET, session, [("other", "admin", hash_key("x"))])  # revoked
    assert not holder(SECRET, session, [("ops", "admin", SHA)])  # role changed
    assert not holder(SECRET, session, [("ops", "operator", hash_key("a new key of the same name"))])


def test_the_secret_is_made_once_and_shared_by_every_connection(tmp_path, store_at):
    path = store_at("d.db")
    first, second = open_database(path), open_database(path)
    try:
        value = secret(first, "dashboard_session")
        assert len(value) == SECRET_BYTES
        assert secret(second, "dashboard_session") == value
        assert secret(first, "another") != value
    finally:
        first.close()
        second.close()
    reopened = open_database(path)
    try:
        assert secret(reopened, "dashboard_session") == value  # across restarts too
    finally:
        reopened.close()
