"""The decision to refuse a server reachable from other machines with no API key (a function of host + settings).

Nothing here binds a socket; tests/cli/test_serve_refusals.py runs the refusal itself in a private network namespace.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from driftline.config import load_settings
from driftline.errors import ConfigError
from driftline.security.exposure import check_exposure, is_loopback

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts_stay_open_without_keys(host: str):
    assert is_loopback(host)
    check_exposure(host, has_keys=False, allow=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.7", "fe80::1", "example.com", ""])
def test_other_hosts_need_a_key_or_the_explicit_setting(host: str):
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match=r"--allow-unauthenticated \(auth\.allow_unauthenticated = true\)"):
        check_exposure(host, has_keys=False, allow=False)
    check_exposure(host, has_keys=True, allow=False)
    check_exposure(host, has_keys=False, allow=True)


def test_the_setting_is_named_for_what_it_does():
    assert not load_settings(environ={}).auth.allow_unauthenticated
    env = {"DRIFTLINE_AUTH__ALLOW_UNAUTHENTICATED": "true"}
    assert load_settings(environ=env).auth.allow_unauthenticated


def test_the_readme_settings_block_is_toml_and_documents_it():
    text = README.read_text()
    block = re.search(r"## Server settings\n.*?```toml\n(.*?)```", text, re.S)
    assert block is not None
    settings = tomllib.loads(block.group(1))
    assert settings["auth"]["allow_unauthenticated"] is False
    assert settings["create_demo"] is True
