"""The space: the current candidate, the default space, --space overrides, expansion and the cuda skip."""

from __future__ import annotations

import pytest

from driftline.errors import ConfigError
from driftline.repository.model_config import ModelConfig
from driftline.tune.space import cuda_devices, current_candidate, default_space, expand, parse_space
from driftline.tune.spec import Candidate


def test_current_candidate_reads_the_backend_threads() -> None:
    onnx = ModelConfig(backend="onnx", max_batch_size=8, onnx=msgspec_onnx(3))
    assert current_candidate(onnx, workers=2) == Candidate(max_batch_size=8, threads=3, workers=2)
    assert current_candidate(ModelConfig(backend="torch")).threads == 1
    assert current_candidate(ModelConfig()) == Candidate()


def msgspec_onnx(threads: int) -> object:
    from driftline.repository.model_config import OnnxOptions

    return OnnxOptions(intra_op_threads=threads)


def test_default_space_on_two_cores() -> None:
    current = Candidate(max_batch_size=16, instances=3)
    space = default_space(current, "onnx", 2)
    assert space["max_batch_size"] == [0, 8, 16, 32]
    assert space["instances"] == [1, 2, 3]
    assert space["threads"] == [1, 2]
    assert space["workers"] == [1, 2]
    assert space["device"][0] == "cpu"
    candidates, _ = expand(default_space(Candidate(), "onnx", 2), "onnx")
    assert Candidate() in candidates
    assert len(candidates) >= 24
    assert all(max(c.instances, c.threads, c.workers) <= 4 for c in candidates)


def test_parse_space_forms() -> None:
    space = parse_space(["max_batch_size=0,8; preferred_batch_sizes=4+8,none", "device=cpu,cuda"], {"instances": [1]})
    assert space == {
        "instances": [1],
        "max_batch_size": [0, 8],
        "preferred_batch_sizes": [[4, 8], []],
        "device": ["cpu", "cuda:0"],
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("batch=1", "unknown knob 'batch'"),
        ("instances=two", "instances: 'two' is not a whole number"),
        ("instances=0", "instances: 0 is below the minimum 1"),
        ("threads=", "threads: give at least one value"),
        ("device=tpu", "device: 'tpu' is not a device"),
        ("preferred_batch_sizes=4+0", "preferred_batch_sizes: 0 is below"),
        ("max_batch_size=" + ",".join(map(str, range(65))), "65 values, at most 64"),
    ],
)
def test_parse_space_refusals(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_space([text], {})


def test_expand_collapses_batching_off_and_trims_preferred() -> None:
    space = {"max_batch_size": [0, 4], "max_queue_delay_us": [0, 500], "preferred_batch_sizes": [[2, 8], []]}
    candidates, notes = expand(space, "onnx")
    assert Candidate(max_batch_size=4, max_queue_delay_us=0, preferred_batch_sizes=(2,)) in candidates
    assert [c for c in candidates if c.max_batch_size == 0] == [Candidate(max_batch_size=0)]
    assert len(candidates) == 1 + 2 * 2
    assert len(candidates) == len(set(candidates))
    assert any("dropped" in n for n in notes)


def test_expand_refuses_a_huge_space_before_building_it() -> None:
    with pytest.raises(ConfigError, match="at most 10000"):
        expand({k: list(range(1, 12)) for k in ("max_batch_size", "instances", "threads", "workers")}, "onnx")


def test_cuda_is_skipped_with_a_note_on_this_cpu_machine() -> None:
    present, why = cuda_devices("onnx")
    if present:
        pytest.skip("a CUDA device is present")
    assert why is not None
    assert "CUDAExecutionProvider" in why
    candidates, notes = expand({"device": ["cpu", "cuda:0"]}, "onnx")
    assert {c.device for c in candidates} == {"cpu"}
    assert notes == [
        "device cuda:0 skipped: onnxruntime has no CUDAExecutionProvider "
        "(install onnxruntime-gpu on a machine with a CUDA GPU)"
    ]
    torch_present, torch_why = cuda_devices("torch")
    assert torch_present or torch_why in ("torch is not installed", "torch sees no CUDA device")
