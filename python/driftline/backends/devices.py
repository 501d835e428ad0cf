"""Maps a configured device (``cpu``, ``cuda``, ``cuda:N``, ``auto``) to what each runtime can actually use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftline.errors import ConfigError

__all__ = ["DevicePlan", "onnx_plan", "parse_device", "torch_plan"]

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """Where a model runs, and a note for the model's metadata when that differs from what was asked."""

    device: str
    providers: list[Any]
    note: str | None = None


def parse_device(device: str) -> tuple[str, int]:
    """Split ``cuda:1`` into ``("cuda", 1)``; ``cpu`` and ``auto`` carry index 0."""
    kind, _, index = device.partition(":")
    return kind, int(index or 0)


def onnx_plan(device: str, available_providers: list[str]) -> DevicePlan:
    """Choose onnxruntime execution providers for a device.

    Raises:
        ConfigError: CUDA was asked for explicitly and this onnxruntime build has no CUDA provider.
    """
    kind, index = parse_device(device)
    has_cuda = CUDA_EP in available_providers
    if kind == "cpu":
        return DevicePlan("cpu", [CPU_EP])
    if kind == "cuda":
        if not has_cuda:
            raise ConfigError(
                f"device {device!r}: onnxruntime has no {CUDA_EP} (providers: {', '.join(available_providers)}); "
                "install onnxruntime-gpu on a machine with a CUDA GPU, or set device = 'cpu' or 'auto'"
            )
        return DevicePlan(f"cuda:{index}", [(CUDA_EP, {"device_id": index}), CPU_EP])
    if has_cuda:
        return DevicePlan("cuda:0", [(CUDA_EP, {"device_id": 0}), CPU_EP], "auto: running on cuda:0")
    return DevicePlan("cpu", [CPU_EP], f"auto: no {CUDA_EP} in this onnxruntime, running on cpu")


def torch_plan(device: str, cuda_available: bool, cuda_count: int) -> DevicePlan:
    """Choose a torch device string.

    Raises:
        ConfigError: CUDA was asked for and torch sees no such device.
    """
    kind, index = parse_device(device)
    if kind == "cpu":
        return DevicePlan("cpu", [])
    if kind == "cuda":
        if not cuda_available:
            raise ConfigError(f"device {device!r}: torch sees no CUDA device; set device = 'cpu' or 'auto'")
        if index >= cuda_count:
            raise ConfigError(f"device {device!r}: torch sees {cuda_count} CUDA device(s), cuda:{index} does not exist")
        return DevicePlan(f"cuda:{index}", [])
    if cuda_available:
        return DevicePlan("cuda:0", [], "auto: running on cuda:0")
    return DevicePlan("cpu", [], "auto: no CUDA device visible to torch, running on cpu")
