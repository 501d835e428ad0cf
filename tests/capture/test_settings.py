"""[capture] in the server settings and in a model's config.toml: validated naming the field, merged by field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftline.capture import should_capture
from driftline.config import CaptureSettings, load_settings
from driftline.errors import ConfigError
from driftline.repository.model_config import load_model_config

BAD = [
    ("sample_rate = 1.5", "capture.sample_rate"),
    ("sample_rate = nan", "capture.sample_rate"),
    ("sample_rate = -0.1", "capture.sample_rate"),
    ("max_age_s = 0", "capture.max_age_s"),
    ("max_bytes = 0", "capture.max_bytes"),
    ('inputs = ["x", "ssn"]\nexclude = ["ssn"]', "capture.exclude"),
    ("enabled = 3", "enabled"),
    ("sampel_rate = 0.5", "sampel_rate"),
]
SERVER_ONLY_BAD = [
    ("queue_rows = 0", "capture.queue_rows"),
    ("segment_rows = 200001\nqueue_rows = 200000", r"capture.segment_rows must be within 1..capture.queue_rows"),
    ("queue_rows = 10", r"capture.segment_rows .*\(10\)"),
    ("segment_seconds = 0", "capture.segment_seconds"),
]


def test_the_server_default_is_capture_off():
    settings = load_settings(environ={})
    assert settings.capture == CaptureSettings()
    assert settings.capture.enabled is False
    assert settings.capture.exclude == []


@pytest.mark.parametrize(("line", "field"), BAD + SERVER_ONLY_BAD)
def test_a_bad_server_capture_key_names_the_file_and_field(tmp_path: Path, line: str, field: str):
    cfg = tmp_path / "server.toml"
    cfg.write_text(f"[capture]\n{line}\n")
    with pytest.raises(ConfigError, match=rf"server\.toml.*{field}"):
        load_settings(cfg, environ={})


def test_capture_settings_come_from_the_environment_too():
    settings = load_settings(environ={"DRIFTLINE_CAPTURE__ENABLED": "true", "DRIFTLINE_CAPTURE__SAMPLE_RATE": "0.25"})
    assert (settings.capture.enabled, settings.capture.sample_rate) == (True, 0.25)
    with pytest.raises(ConfigError, match=r"capture\.sample_rate"):
        load_settings(environ={"DRIFTLINE_CAPTURE__SAMPLE_RATE": "2"})


@pytest.mark.parametrize(("line", "field"), [*BAD, ("queue_rows = 10", "queue_rows")])
def test_a_bad_model_capture_key_names_the_file_and_field(tmp_path: Path, line: str, field: str):
    path = tmp_path / "config.toml"
    path.write_text(f"[capture]\n{line}\n")
    with pytest.raises(ConfigError, match=rf"config\.toml.*{field}"):
        load_model_config(path)


def test_a_models_capture_table_overrides_the_default_field_by_field(tmp_path: Path):
    server = CaptureSettings(enabled=True, sample_rate=0.5, exclude=["ssn"], max_bytes=1000, segment_rows=50)
    path = tmp_path / "config.toml"
    path.write_text('[capture]\nsample_rate = 0.1\noutputs = ["label"]\n')
    merged = load_model_config(path).capture.over(server)
    assert merged == CaptureSettings(
        enabled=True, sample_rate=0.1, outputs=["label"], exclude=["ssn"], max_bytes=1000, segment_rows=50
    )
    assert load_model_config(tmp_path / "missing.toml").capture.over(server) == server
    path.write_text("[capture]\nenabled = false\n")
    assert load_model_config(path).capture.over(server).enabled is False


def test_sampling_is_near_the_rate_and_has_exact_edges():
    ids = [f"req-{i}" for i in range(20_000)]
    for rate in (0.05, 0.3, 0.9):
        share = sum(should_capture(i, rate) for i in ids) / len(ids)
        assert abs(share - rate) < 0.02  # about six binomial standard deviations at n = 20,000
    assert all(should_capture(i, 1.0) for i in ids[:100])
    assert not any(should_capture(i, 0.0) for i in ids[:100])
    assert should_capture("\ud800 lone surrogate", 0.5) in {True, False}  # any str id, never an error


def test_sampling_decides_alike_in_every_process():
    ids = [f"req-{i}" for i in range(2000)]
    here = "".join("1" if should_capture(i, 0.37) else "0" for i in ids)
    code = (
        "from driftline.capture import should_capture; "
        "print(''.join('1' if should_capture(f'req-{i}', 0.37) else '0' for i in range(2000)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own str hash differs per process; ours may not
    there = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here
    assert here == "".join("1" if should_capture(i, 0.37) else "0" for i in ids)
