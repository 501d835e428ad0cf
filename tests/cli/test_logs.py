"""The JSON line format, request ids, the access sampler and the [logs] settings (no server: see e2e/test_logs.py)."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import logging.config
import math
import sys
from datetime import datetime

import pytest

from driftline.cli.logs import log_config
from driftline.config import load_settings
from driftline.errors import ConfigError
from driftline.logs.access import REQUEST_ID, AccessLog, AccessSampler, RequestIds, RequestNote, checked_id
from driftline.logs.format import JsonFormatter
from driftline.logs.settings import LogSettings


def _record(msg: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("driftline.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_line_has_the_base_fields() -> None:
    line = JsonFormatter().format(_record())
    data = json.loads(line)
    assert data["level"] == "WARNING"
    assert data["logger"] == "driftline.test"
    assert data["message"] == "hello world"
    assert data["ts"].endswith("Z")
    assert datetime.fromisoformat(data["ts"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert "request_id" not in data


def test_json_line_carries_access_fields_and_the_record_id() -> None:
    access = {"method": "POST", "path": "/v2/models/m/infer", "status": 200, "latency_ms": 1.5, "rows": 2}
    data = json.loads(JsonFormatter().format(_record(request_id="r-1", access=access)))
    assert data["request_id"] == "r-1"
    assert {k: data[k] for k in access} == access


def test_json_line_takes_the_request_id_of_the_task() -> None:
    def in_request() -> str:
        REQUEST_ID.set("task-7")
        return JsonFormatter().format(_record())

    assert json.loads(contextvars.copy_context().run(in_request))["request_id"] == "task-7"
    assert REQUEST_ID.get() is None  # the request's context, not this one


def test_an_exception_is_one_line_in_exc() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert "ZeroDivisionError" in data["exc"]
    assert "Traceback" in data["exc"]


def test_log_config_json_formats_every_logger_through_the_root() -> None:
    config = log_config("info", "json")
    stream = io.StringIO()
    config["handlers"]["stderr"] = {"class": "logging.StreamHandler", "formatter": "driftline", "stream": stream}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logging.config.dictConfig(config)
        logging.getLogger("uvicorn.error").info("started %d", 1)
        logging.getLogger("driftline.http").warning("careful")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(d["logger"], d["message"]) for d in lines] == [
        ("uvicorn.error", "started 1"),
        ("driftline.http", "careful"),
    ]


def test_log_config_text_is_the_human_format() -> None:
    assert log_config("info")["formatters"]["driftline"] == {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc-123", "abc-123"),
        (b"abc-123", "abc-123"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("", None),
        ("has space", None),
        ("line\nbreak", None),
        (b"\xc3\xa9t\xc3\xa9", None),
        ("\u00e9t\u00e9", None),
        (None, None),
    ],
)
def test_checked_id(value: str | bytes | None, expected: str | None) -> None:
    assert checked_id(value) == expected


def test_generated_ids_are_unique_and_valid() -> None:
    a, b = RequestIds(), RequestIds()
    ids = [a.new() for _ in range(100)] + [b.new() for _ in range(100)]
    assert len(set(ids)) == 200
    assert all(checked_id(i) == i for i in ids)


@pytest.mark.parametrize("share", [0.0, 0.01, 0.3, 1.0])
def test_the_sampled_share_is_within_a_binomial_bound(share: float) -> None:
    n = 20_000
    sampler = AccessSampler(share, 10, seed=3)
    kept = sum(sampler.sampled() for _ in range(n))
    bound = 5 * math.sqrt(n * share * (1 - share))
    assert abs(kept - n * share) <= bound


def test_a_seed_repeats_the_choice() -> None:
    a, b = AccessSampler(0.5, 10, seed=9), AccessSampler(0.5, 10, seed=9)
    assert [a.sampled() for _ in range(200)] == [b.sampled() for _ in range(200)]


def test_errors_are_bounded_per_second_and_the_rest_counted() -> None:
    now = [100.0]
    sampler = AccessSampler(0.0, 3, clock=lambda: now[0])
    assert [sampler.error() for _ in range(5)] == [True, True, True, False, False]
    now[0] = 100.9
    assert sampler.take_dropped() == 0  # the second is not over yet
    assert sampler.error() is False
    now[0] = 101.0
    assert sampler.take_dropped() == 3
    assert sampler.take_dropped() == 0
    assert [sampler.error() for _ in range(4)] == [True, True, True, False]


def test_access_log_wants_errors_samples_inference_and_obeys_other_routes() -> None:
    off = AccessLog(LogSettings(access_sample=0.0, other_routes=False))
    assert not off.wanted(200, inference=True)
    assert not off.wanted(200, inference=False)
    assert off.wanted(404, inference=False)
    on = AccessLog(LogSettings(access_sample=1.0))
    assert on.wanted(200, inference=True)
    assert on.wanted(200, inference=False)


def test_access_line_fields(caplog: pytest.LogCaptureFixture) -> None:
    log = AccessLog(LogSettings())
    note = RequestNote("rid-1")
    note.model, note.version, note.rows = "iris", 2, 3
    with caplog.at_level(logging.INFO, logger="driftline.access"):
        log.write("rid-1", "POST", "/v2/models/iris/infer", 503, 0.0123456, note)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    data = json.loads(JsonFormatter().format(record))
    assert data["request_id"] == "rid-1"
    assert data["model"] == "iris"
    assert data["version"] == 2
    assert data["rows"] == 3
    assert data["status"] == 503
    assert data["latency_ms"] == 12.346
    assert data["message"] == "POST /v2/models/iris/infer 503 12.346ms id=rid-1"


def test_settings_from_the_environment() -> None:
    settings = load_settings(environ={"DRIFTLINE_LOGS__FORMAT": "json", "DRIFTLINE_LOGS__ACCESS_SAMPLE": "0.5"})
    assert settings.logs == LogSettings(format="json", access_sample=0.5)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("FORMAT", "xml", "logs.format"),
        ("ACCESS_SAMPLE", "1.5", "logs.access_sample"),
        ("ERROR_LINES_PER_S", "-1", "logs.error_lines_per_s"),
    ],
)
def test_bad_settings_name_the_key(key: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(environ={f"DRIFTLINE_LOGS__{key}": value})
