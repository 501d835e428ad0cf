"""Signature compatibility: whether one version may take over another's traffic without breaking its clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftline.backends.base import TensorSpec
    from driftline.serving.loaded import LoadedModel

__all__ = ["signature_change"]


def _dims_fit(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or x < 0 or y < 0 for x, y in zip(a, b, strict=True))


def signature_change(old: LoadedModel, new: LoadedModel) -> str | None:
    """Why ``new`` cannot take over ``old``'s traffic (its clients' requests or their reading of the answer would
    break), or None when it can. Added optional outputs are fine; a removed, renamed or retyped tensor is not."""

    def by_name(specs: tuple[TensorSpec, ...]) -> dict[str, TensorSpec]:
        return {s.name: s for s in specs}

    old_in, new_in = by_name(old.inputs), by_name(new.inputs)
    for name, spec in new_in.items():
        if name not in old_in:
            return f"input {name!r} is new in version {new.version} (version {old.version} has {sorted(old_in)})"
        was = old_in[name]
        if spec.datatype != was.datatype or not _dims_fit(tuple(spec.shape), tuple(was.shape)):
            return f"input {name!r} changed from {was.datatype}{list(was.shape)} to {spec.datatype}{list(spec.shape)}"
    missing = sorted(set(old_in) - set(new_in))
    if missing:
        return f"inputs {missing} are gone in version {new.version}"
    new_out = by_name(new.outputs)
    for name, was in by_name(old.outputs).items():
        out = new_out.get(name)
        if out is None:
            return f"output {name!r} is gone in version {new.version}"
        if out.datatype != was.datatype or not _dims_fit(tuple(out.shape), tuple(was.shape)):
            return f"output {name!r} changed from {was.datatype}{list(was.shape)} to {out.datatype}{list(out.shape)}"
    return None
