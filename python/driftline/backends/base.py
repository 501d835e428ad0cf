"""The one small interface every model runtime implements, and the signature it reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import numpy.typing as npt

    from driftline.repository.model_config import TensorConfig

__all__ = ["Backend", "TensorSpec", "check_declared_signature"]


class TensorSpec(msgspec.Struct, frozen=True):
    """A tensor of the model's signature: name, OIP datatype, full shape with -1 for dynamic dimensions."""

    name: str
    datatype: str
    shape: tuple[int, ...]


class Backend(Protocol):
    """A loaded model instance. ``infer`` is called from one worker thread at a time and must release the GIL."""

    platform: str
    device: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    notes: tuple[str, ...]

    def infer(self, inputs: Mapping[str, npt.NDArray[np.generic]]) -> dict[str, npt.NDArray[np.generic]]:
        """Run one batch: every declared input by name, every output by name."""
        ...

    def close(self) -> None:
        """Release the runtime's resources."""
        ...


def check_declared_signature(
    where: str, kind: str, declared: list[TensorConfig] | None, actual: tuple[TensorSpec, ...]
) -> tuple[TensorSpec, ...]:
    """Reconcile config.toml's declared tensors with what the model file says.

    The declared names and datatypes must match the model's; declared shapes may be narrower (a fixed dimension
    where the model has -1). Returns the signature to serve.

    Raises:
        ValueError: naming the tensor that differs.
    """
    if declared is None:
        return actual
    by_name = {t.name: t for t in actual}
    if {t.name for t in declared} != set(by_name):
        raise ValueError(
            f"{where}: {kind} {sorted(t.name for t in declared)} do not match the model's {sorted(by_name)}"
        )
    result = []
    for tensor in declared:
        model = by_name[tensor.name]
        if tensor.datatype != model.datatype:
            raise ValueError(
                f"{where}: {kind[:-1]} {tensor.name!r} is declared {tensor.datatype} but the model has {model.datatype}"
            )
        if len(tensor.shape) != len(model.shape) or any(
            m != -1 and d != m for d, m in zip(tensor.shape, model.shape, strict=True)
        ):
            raise ValueError(
                f"{where}: {kind[:-1]} {tensor.name!r} is declared with shape {tensor.shape} "
                f"but the model has {list(model.shape)}"
            )
        result.append(TensorSpec(tensor.name, tensor.datatype, tuple(tensor.shape)))
    return tuple(result)
