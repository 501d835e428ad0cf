"""The torch backend: TorchScript (``model.pt``) and torch.export archives (``model.pt2``); torch is imported lazily."""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.backends.base import TensorSpec
from driftline.backends.devices import torch_plan
from driftline.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import numpy.typing as npt

    from driftline.repository.model_config import ModelConfig

__all__ = ["TorchBackend", "import_torch"]

_TORCH_DTYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}


def import_torch(where: str) -> Any:
    """Import torch on first use so the ONNX-only install never needs it.

    Raises:
        ConfigError: torch is not installed.
    """
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise ConfigError(f"{where}: torch models need torch: pip install 'driftline[torch]'") from None


def _export_signature(program: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Read names, dtypes and shapes (symbolic dims as -1) off a torch.export program's graph."""

    def spec(name: str, value: Any) -> TensorSpec:
        dtype = _TORCH_DTYPES.get(str(value.dtype).removeprefix("torch."))
        if dtype is None:
            raise ValueError(f"tensor {name!r} has dtype {value.dtype}, which the protocol cannot carry")
        return TensorSpec(name, dtype, tuple(d if isinstance(d, int) else -1 for d in value.shape))

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = tuple(spec(name, placeholders[name].meta["val"]) for name in program.graph_signature.user_inputs)
    output_node = next(n for n in program.graph.nodes if n.op == "output")
    values = [a.meta["val"] for a in output_node.args[0]][-len(program.graph_signature.user_outputs) :]
    outputs = tuple(spec(f"output_{i}", v) for i, v in enumerate(values))
    return inputs, outputs


class TorchBackend:
    """One torch module on one device, run under ``torch.inference_mode`` (torch ops release the GIL)."""

    platform = "pytorch_libtorch"

    def __init__(self, path: Path, config: ModelConfig) -> None:
        """Load the module, move it to the configured device and settle its signature.

        Raises:
            ConfigError: torch missing, unreadable file, unavailable device, or no usable signature.
        """
        where = str(path)
        torch = import_torch(where)
        self._torch = torch
        torch.set_num_threads(config.torch.threads)
        plan = torch_plan(config.device, torch.cuda.is_available(), torch.cuda.device_count())
        self.device = plan.device
        self.notes: tuple[str, ...] = (plan.note,) if plan.note else ()
        derived: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None = None
        try:
            if path.suffix == ".pt2":
                program = torch.export.load(str(path))
                derived = _export_signature(program)
                self._module = program.module().to(self.device)
            else:
                with warnings.catch_warnings():
                    # TorchScript is deprecated upstream but remains the common export format; load it quietly.
                    warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
                    self._module = torch.jit.load(str(path), map_location=self.device)
                self._module.eval()
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, pickle and zip errors for a bad archive
            raise ConfigError(f"{where}: torch cannot load the model: {exc}") from None
        if config.inputs is not None and config.outputs is not None:
            self.inputs = tuple(TensorSpec(t.name, t.datatype, tuple(t.shape)) for t in config.inputs)
            self.outputs = tuple(TensorSpec(t.name, t.datatype, tuple(t.shape)) for t in config.outputs)
        elif derived is not None:
            self.inputs, self.outputs = derived
        else:
            raise ConfigError(
                f"{where}: TorchScript models need their signature in config.toml ([[inputs]] and [[outputs]] "
                "with name, datatype and shape)"
            )
        bad = [t.name for t in self.inputs + self.outputs if t.datatype not in _TORCH_DTYPES.values()]
        if bad:
            raise ConfigError(f"{where}: torch tensors cannot have datatype BYTES ({', '.join(bad)})")
        self._input_names = [t.name for t in self.inputs]
        self._output_names = [t.name for t in self.outputs]

    def infer(self, inputs: Mapping[str, npt.NDArray[np.generic]]) -> dict[str, npt.NDArray[np.generic]]:
        """Run the module once on a whole batch, positional inputs in signature order."""
        torch = self._torch
        with torch.inference_mode():
            # torch.from_numpy needs a writable array; binary request bodies arrive as read-only views.
            tensors = [
                torch.from_numpy(a if a.flags.writeable else a.copy()).to(self.device)
                for a in (inputs[n] for n in self._input_names)
            ]
            result = self._module(*tensors)
            if isinstance(result, dict):
                values = [result[n] for n in self._output_names]
            elif isinstance(result, (tuple, list)):
                values = list(result)
            else:
                values = [result]
            if len(values) != len(self._output_names):
                raise RuntimeError(
                    f"model returned {len(values)} outputs, the signature declares {len(self._output_names)}"
                )
            return {n: np.asarray(v.detach().cpu().numpy()) for n, v in zip(self._output_names, values, strict=True)}

    def close(self) -> None:
        """Drop the module and free cached device memory."""
        del self._module
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()
