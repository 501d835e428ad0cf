"""The tuner's contract: SLO and load parsing, the candidate's config.toml patch, and the comment-keeping editor."""

from __future__ import annotations

import tomllib

import msgspec
import pytest

from driftline.errors import ConfigError
from driftline.repository.model_config import ModelConfig
from driftline.tune.spec import Candidate, Load, Slo, config_patch, parse_load, parse_slo
from driftline.tune.toml_patch import patch_config_text


def test_slo_forms() -> None:
    assert parse_slo(["p99=10ms"]) == Slo("p99", 10.0, None)
    assert parse_slo(["p50=800us", "rps>=500"]) == Slo("p50", 0.8, 500.0)
    assert parse_slo(["p95=0.5s,throughput=20"]) == Slo("p95", 500.0, 20.0)


@pytest.mark.parametrize(
    ("texts", "words"),
    [
        ([], "give a latency limit"),
        (["p98=10ms"], "p98=10ms"),
        (["p99=10"], "expected PERCENTILE=LIMIT"),
        (["p99=0ms"], "above 0"),
        (["p99=1ms", "p90=2ms"], "one latency limit"),
    ],
)
def test_slo_refusals(texts: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_slo(texts)


def test_load_forms() -> None:
    assert parse_load("concurrency=8,1,8") == Load("concurrency", (1.0, 8.0))
    assert parse_load("rate=500.5") == Load("rate", (500.5,))
    assert parse_load("trace") == Load("trace", (1.0,))
    assert parse_load("concurrency=4", request_batch=16).request_batch == 16


@pytest.mark.parametrize(
    "text", ["concurrency", "concurrency=1.5", "concurrency=0", "rate=-1", "users=4", "rate=a,b", "concurrency=2000"]
)
def test_load_refusals(text: str) -> None:
    with pytest.raises(ConfigError, match="--load"):
        parse_load(text)


def test_patch_sets_every_knob_and_keeps_comments() -> None:
    text = (
        "# my model\nmax_batch_size = 8\n\n[batching]\nmax_queue_delay_us = 50  # old\n\n"
        '[[inputs]]\nname = "x"\ndatatype = "FP32"\nshape = [-1, 4]\n'
    )
    candidate = Candidate(max_batch_size=16, instances=2, threads=2, preferred_batch_sizes=(4, 8), max_queue_delay_us=0)
    patched = patch_config_text(text, config_patch(candidate, "onnx"))
    assert patched.startswith("# my model\n")
    config = msgspec.convert(tomllib.loads(patched), ModelConfig)
    assert (config.max_batch_size, config.instances, config.onnx.intra_op_threads) == (16, 2, 2)
    assert (config.batching.max_queue_delay_us, config.batching.preferred_batch_sizes) == (0, [4, 8])
    assert config.inputs is not None
    assert config.inputs[0].name == "x"
    torch = msgspec.convert(tomllib.loads(patch_config_text("", config_patch(candidate, "torch"))), ModelConfig)
    assert torch.torch.threads == 2


def test_patch_refuses_what_it_cannot_edit() -> None:
    with pytest.raises(ConfigError, match="by hand"):
        patch_config_text("batching = { max_queue_delay_us = 3 }\n", config_patch(Candidate(), "onnx"))
    with pytest.raises(ConfigError, match="invalid TOML"):
        patch_config_text("max_batch_size = [\n", {"max_batch_size": 1})
