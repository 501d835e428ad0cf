"""The project's own docs agree with the code: the README's settings block is valid TOML with the real keys and
defaults."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from driftline.config import HttpSettings

ROOT = Path(__file__).resolve().parent.parent


def _settings_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Server settings") :]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_settings_block_is_valid_toml_with_the_real_http_keys_and_defaults():
    http = tomllib.loads(_settings_block())["http"]
    defaults = msgspec.structs.asdict(HttpSettings())
    for key, value in http.items():
        assert key in defaults, f"[http] {key} in the README is not a setting"
        assert value == defaults[key], f"[http] {key}: README says {value!r}, the default is {defaults[key]!r}"
    for key in ("keep_alive_s", "header_timeout_s", "body_timeout_s", "max_connections"):
        assert key in http, f"[http] {key} is missing from the README's settings block"
