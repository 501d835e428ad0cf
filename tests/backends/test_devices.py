import pytest

from driftline.backends.devices import onnx_plan, parse_device, torch_plan
from driftline.errors import ConfigError


def test_parse_device():
    assert parse_device("cuda:3") == ("cuda", 3)
    assert parse_device("cpu") == ("cpu", 0)


def test_onnx_plans():
    cpu_only = ["CPUExecutionProvider"]
    assert onnx_plan("cpu", cpu_only).providers == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="cuda:1"):
        onnx_plan("cuda:1", cpu_only)
    auto = onnx_plan("auto", cpu_only)
    assert (auto.device, auto.note is not None) == ("cpu", True)
    gpu = onnx_plan("cuda:1", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert gpu.device == "cuda:1"
    assert gpu.providers[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert onnx_plan("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]).device == "cuda:0"


def test_torch_plans():
    assert torch_plan("cpu", False, 0).device == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device"):
        torch_plan("cuda", False, 0)
    with pytest.raises(ConfigError, match="cuda:2 does not exist"):
        torch_plan("cuda:2", True, 1)
    assert torch_plan("auto", False, 0).note
    assert torch_plan("auto", True, 2).device == "cuda:0"
