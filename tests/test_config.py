import re
from pathlib import Path

import pytest

from driftline.config import load_settings
from driftline.errors import ConfigError


def test_defaults_are_the_embedded_ones():
    s = load_settings(environ={})
    assert (s.http.host, s.http.port, s.repository, s.database) == (
        "127.0.0.1",
        8000,
        "demo-models",
        "driftline.db",
    )


def test_precedence_file_env_overrides(tmp_path: Path):
    cfg = tmp_path / "server.toml"
    cfg.write_text('repository = "from-file"\n[http]\nport = 9000\nworkers = 2\n')
    env = {"DRIFTLINE_HTTP__PORT": "9100", "DRIFTLINE_LOG_LEVEL": "debug"}
    s = load_settings(cfg, {"http": {"workers": 3}}, environ=env)
    assert s.repository == "from-file"
    assert s.http.port == 9100  # env beats file
    assert s.http.workers == 3  # override beats file
    assert s.log_level == "debug"


def test_unknown_key_names_file_and_key(tmp_path: Path):
    cfg = tmp_path / "server.toml"
    cfg.write_text("[http]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"server\.toml.*prot"):
        load_settings(cfg, environ={})


def test_bad_env_value_is_reported():
    with pytest.raises(ConfigError, match="port"):
        load_settings(environ={"DRIFTLINE_HTTP__PORT": "eighty"})
    with pytest.raises(ConfigError, match="port"):
        load_settings(environ={"DRIFTLINE_HTTP__PORT": "70000"})


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("key", "value"),
    [("keep_alive_s", "0"), ("header_timeout_s", "-1"), ("body_timeout_s", "0"), ("max_connections", "0")],
)
def test_http_limits_must_be_positive(key: str, value: str):
    with pytest.raises(ConfigError, match=f"http.{key}"):
        load_settings(environ={f"DRIFTLINE_HTTP__{key.upper()}": value})


def test_alert_webhooks_of_both_sections_make_one_list_and_the_public_url_is_the_export_base(tmp_path: Path):
    cfg = tmp_path / "server.toml"
    cfg.write_text(
        '[alerts]\nwebhooks = ["http://a/hook", "http://b/hook"]\n[drift]\nwebhooks = ["http://b/hook", "https://c"]\n'
    )
    s = load_settings(cfg, environ={})
    assert s.webhooks() == ["http://a/hook", "http://b/hook", "https://c"]
    assert s.http.base_url() == "http://127.0.0.1:8000"
    assert load_settings(environ={"DRIFTLINE_HTTP__HOST": "::1"}).http.base_url() == "http://[::1]:8000"
    # Worker processes get every [http] key back as a DRIFTLINE_HTTP__* string: "" is the unset public_url.
    env = {"DRIFTLINE_HTTP__PUBLIC_URL": "https://driftline.example.com/"}
    assert load_settings(environ=env).http.base_url() == "https://driftline.example.com"
    assert load_settings(environ={"DRIFTLINE_HTTP__PUBLIC_URL": ""}).http.base_url() == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[alerts]\nwebhooks = ["ftp://x"]\n', "alerts.webhooks"),
        ('[drift]\nwebhooks = ["127.0.0.1:9000/hook"]\n', "drift.webhooks"),
        ('[http]\npublic_url = "driftline.example.com"\n', "http.public_url"),
        ("[alerts]\nretries = -1\n", "alerts.retries"),
        ("[quality]\ncheck_interval_s = -1\n", "quality.check_interval_s"),
        ("[quality]\ngauge_window_s = 0\n", "quality.gauge_window_s"),
        ("[quality]\nwindow = 3\n", "window"),
    ],
)
def test_bad_alert_and_quality_settings_name_their_key(tmp_path: Path, text: str, key: str):
    cfg = tmp_path / "server.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_settings(cfg, environ={})


def test_the_drain_delay_is_not_negative_and_needs_uvicorn():
    assert load_settings(environ={}).http.drain_delay_s == 0  # a developer's Ctrl-C stops at once
    assert load_settings(environ={"DRIFTLINE_HTTP__DRAIN_DELAY_S": "2.5"}).http.drain_delay_s == 2.5
    for value in ("-1", "nan"):
        with pytest.raises(ConfigError, match=re.escape("http.drain_delay_s")):
            load_settings(environ={"DRIFTLINE_HTTP__DRAIN_DELAY_S": value})
    with pytest.raises(ConfigError, match=re.escape("http.drain_delay_s needs http.server = 'uvicorn'")):
        load_settings(environ={"DRIFTLINE_HTTP__DRAIN_DELAY_S": "1", "DRIFTLINE_HTTP__SERVER": "granian"})
