"""API keys: hashing, roles, and what a request must present."""

from __future__ import annotations

import pytest

from driftline.config import load_settings
from driftline.errors import ConfigError, Forbidden, Unauthorized
from driftline.security.keys import KeyRing, Principal, check_role, hash_key, key_from_headers, new_key


def ring() -> tuple[KeyRing, dict[str, str]]:
    keys = {role: new_key() for role in ("viewer", "predictor", "operator", "admin")}
    r = KeyRing()
    r.replace((f"{role}-key", role, hash_key(key)) for role, key in keys.items())
    return r, keys


def test_roles_include_the_ones_below():
    assert Principal("a", "admin").allows("operator")
    assert Principal("o", "operator").allows("predictor")
    assert not Principal("p", "predictor").allows("operator")
    assert not Principal("v", "viewer").allows("predictor")


def test_keys_authenticate_by_hash_and_role():
    r, keys = ring()
    assert r.authenticate([(b"authorization", f"Bearer {keys['admin']}".encode())], "admin").name == "admin-key"
    assert r.authenticate([(b"x-api-key", keys["operator"].encode())], "predictor").role == "operator"
    with pytest.raises(Forbidden, match="has role 'viewer'; this needs 'predictor'"):
        r.authenticate([(b"x-api-key", keys["viewer"].encode())], "predictor")
    with pytest.raises(Unauthorized, match="required"):
        r.authenticate([], "viewer")
    with pytest.raises(Unauthorized, match="not known"):
        r.authenticate([(b"x-api-key", b"dl_wrong")], "viewer")


def test_header_forms():
    assert key_from_headers([(b"authorization", b"bearer abc")]) == "abc"
    assert key_from_headers([(b"authorization", b"Basic abc")]) is None
    assert key_from_headers([(b"x-api-key", b"  k ")]) == "k"


def test_new_keys_are_random_and_only_hashes_are_kept():
    a, b = new_key(), new_key()
    assert a != b
    assert a.startswith("dl_")
    assert len(a) > 40
    assert hash_key(a) != a
    assert len(hash_key(a)) == 64


def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role 'root'; one of viewer, predictor, operator, admin"):
        check_role("root")


def test_config_keys_are_validated(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(f'[[auth.keys]]\nname = "ci"\nrole = "predictor"\nsha256 = "{hash_key("x")}"\n')
    assert load_settings(good, environ={}).auth.keys[0].role == "predictor"
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[[auth.keys]]\nname = "ci"\nrole = "root"\nsha256 = "{hash_key("x")}"\n')
    with pytest.raises(ConfigError, match="unknown role 'root'"):
        load_settings(bad, environ={})
    plain = tmp_path / "plain.toml"
    plain.write_text('[[auth.keys]]\nname = "ci"\nrole = "admin"\nsha256 = "my-secret-key"\n')
    with pytest.raises(ConfigError, match="64 lower-case hex"):
        load_settings(plain, environ={})


def test_client_variables_are_not_settings():
    settings = load_settings(environ={"DRIFTLINE_URL": "http://x", "DRIFTLINE_API_KEY": "k"})
    assert settings.default_alias == "champion"
