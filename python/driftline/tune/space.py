"""The search space: the model's current configuration, a default space for this machine, `--space` overrides, and
its expansion into valid, deduplicated candidates (CUDA ones only where this machine can run them)."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, Final

from driftline.backends.devices import CUDA_EP, parse_device
from driftline.errors import ConfigError
from driftline.tune.spec import DEFAULTS, KNOBS, Candidate

if TYPE_CHECKING:
    from driftline.repository.model_config import ModelConfig

__all__ = [
    "MAX_POINTS",
    "MAX_VALUES",
    "cuda_devices",
    "current_candidate",
    "default_space",
    "expand",
    "normalize",
    "parse_space",
]

MAX_POINTS: Final = 10_000
MAX_VALUES: Final = 64


def current_candidate(config: ModelConfig, workers: int = 1) -> Candidate:
    """The model's configuration as it is (ModelConfig already holds driftline's defaults for unset keys)."""
    threads = config.torch.threads if config.backend == "torch" else config.onnx.intra_op_threads
    return Candidate(
        max_batch_size=config.max_batch_size,
        max_queue_delay_us=config.batching.max_queue_delay_us,
        preferred_batch_sizes=tuple(config.batching.preferred_batch_sizes),
        instances=config.instances,
        threads=threads,
        workers=workers,
        device=config.device,
    )


def _with(values: list[Any], current: Any) -> list[Any]:
    """``values`` plus the current value, sorted, without duplicates (the current config is always a candidate)."""
    out = [*values, current] if current not in values else list(values)
    return sorted(out, key=lambda v: (len(v), v) if isinstance(v, list) else v)


def default_space(current: Candidate, backend: str, cores: int) -> dict[str, list[Any]]:
    """A modest space for this machine: batching off / small / the current size, 1..cores instances x threads,
    1..cores workers, and each CUDA device present. On 2 cores it is 4 x 2 x 2 x 2 x 2 = 64 points at most
    (fewer after `expand` collapses batching-off), which a brute search measures in minutes."""
    cores = max(1, cores)
    spread = sorted({1, cores} | ({2} if cores >= 2 else set()))
    devices = [current.device] if current.device != "auto" else ["cpu"]
    devices += [d for d in cuda_devices(backend)[0] if d not in devices]
    return {
        "max_batch_size": _with([0, 8, 32], current.max_batch_size),
        "max_queue_delay_us": _with([0, 1000], current.max_queue_delay_us),
        "preferred_batch_sizes": [list(current.preferred_batch_sizes)],
        "instances": _with([v for v in spread if v <= cores * 2], current.instances),
        "threads": _with([v for v in spread if v <= cores * 2], current.threads),
        "workers": _with([v for v in spread if v <= cores * 2], current.workers),
        "device": devices,
    }


def _value(knob: str, text: str) -> Any:
    spec = KNOBS[knob]
    text = text.strip()
    if spec.kind == "device":
        if text in ("cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
            return "cuda:0" if text == "cuda" else text
        raise ConfigError(f"--space {knob}: {text!r} is not a device (cpu, cuda or cuda:N)")
    parts = [] if spec.kind == "int_list" and text == "none" else text.split("+" if spec.kind == "int_list" else "\0")
    out: list[int] = []
    for part in parts:
        try:
            number = int(part)
        except ValueError:
            raise ConfigError(f"--space {knob}: {part!r} is not a whole number") from None
        if number < spec.minimum:
            raise ConfigError(f"--space {knob}: {number} is below the minimum {spec.minimum}")
        out.append(number)
    return sorted(set(out)) if spec.kind == "int_list" else out[0]


def parse_space(texts: list[str], base: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``base`` with each ``knob=v1,v2,...`` of ``texts`` (several texts, or ``;`` between knobs) in its place.

    Raises:
        ConfigError: naming the knob and the value: an unknown knob, a non-integer, a value under the knob's
            minimum, an empty list or more than `MAX_VALUES` values.
    """
    out = {k: list(v) for k, v in base.items()}
    for item in (i.strip() for text in texts for i in text.split(";")):
        if not item:
            continue
        knob, eq, values = item.partition("=")
        knob = knob.strip()
        if knob not in KNOBS:
            raise ConfigError(f"--space {item!r}: unknown knob {knob!r}; one of {', '.join(KNOBS)}")
        texts_ = [v for v in values.split(",") if v.strip()] if eq else []
        if not texts_:
            raise ConfigError(f"--space {knob}: give at least one value ({knob}=v1,v2,...)")
        if len(texts_) > MAX_VALUES:
            raise ConfigError(f"--space {knob}: {len(texts_)} values, at most {MAX_VALUES}")
        parsed: list[Any] = []
        for value in (_value(knob, t) for t in texts_):
            if value not in parsed:
                parsed.append(value)
        out[knob] = parsed
    return out


def cuda_devices(backend: str) -> tuple[list[str], str | None]:
    """The ``cuda:N`` devices this machine can run ``backend`` on, and why there are none when there are none."""
    if backend == "torch":
        try:
            import torch
        except ImportError:
            return [], "torch is not installed"
        count = int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
        if count == 0:
            return [], "torch sees no CUDA device"
        return [f"cuda:{i}" for i in range(count)], None
    try:
        import onnxruntime as ort
    except ImportError:
        return [], "onnxruntime is not installed"
    providers = list(ort.get_available_providers())
    if CUDA_EP not in providers:
        return [], f"onnxruntime has no {CUDA_EP} (install onnxruntime-gpu on a machine with a CUDA GPU)"
    count = _nvidia_count()
    if count == 0:
        return [], f"onnxruntime has {CUDA_EP} but no CUDA device is visible"
    return [f"cuda:{i}" for i in range(count)], None


def _nvidia_count() -> int:
    """CUDA devices visible, counted by their /dev nodes (onnxruntime has no device-count call)."""
    from pathlib import Path

    return sum(1 for p in Path("/dev").glob("nvidia[0-9]*") if p.name[6:].isdigit())


def _runnable(device: str, present: list[str], why: str | None) -> str | None:
    """None when ``device`` can run here, else the note saying why it is skipped."""
    if parse_device(device)[0] == "cpu" or device in present:
        return None
    reason = why or f"no such device here (present: {', '.join(present)})"
    return f"device {device} skipped: {reason}"


def normalize(values: dict[str, Any]) -> Candidate:
    """The candidate a full set of knob values means: batching off ignores the delay and preferred sizes (they
    collapse to the defaults), and preferred sizes above ``max_batch_size`` are dropped."""
    mbs = int(values["max_batch_size"])
    pref = tuple(s for s in values["preferred_batch_sizes"] if s <= mbs)
    delay = int(values["max_queue_delay_us"])
    if mbs == 0:
        delay, pref = DEFAULTS["max_queue_delay_us"], ()
    return Candidate(**{**values, "max_queue_delay_us": delay, "preferred_batch_sizes": pref})


def expand(space: dict[str, list[Any]], backend: str) -> tuple[list[Candidate], list[str]]:
    """Every valid combination of ``space``, deduplicated, in a stable order, and notes on what was dropped.

    With ``max_batch_size = 0`` the delay and preferred sizes mean nothing, so those combinations collapse to one
    candidate; preferred sizes above ``max_batch_size`` are dropped; CUDA devices this machine cannot run are
    skipped with a note.

    Raises:
        ConfigError: the space is over `MAX_POINTS` points (before any candidate is built).
    """
    values = {k: space.get(k) or [DEFAULTS[k]] for k in KNOBS}
    size = math.prod(len(v) for v in values.values())
    if size > MAX_POINTS:
        raise ConfigError(f"--space: {size} points, at most {MAX_POINTS}; give fewer values")
    notes: list[str] = []
    devices: list[str] = []
    present, why = ([], None) if all(d == "cpu" for d in values["device"]) else cuda_devices(backend)
    for device in values["device"]:
        note = _runnable(device, present, why)
        if note is None:
            devices.append(device)
        elif note not in notes:
            notes.append(note)
    values["device"] = devices
    seen: dict[Candidate, None] = {}
    trimmed = 0
    for combo in itertools.product(*values.values()):
        v = dict(zip(values, combo, strict=True))
        candidate = normalize(v)
        trimmed += len(candidate.preferred_batch_sizes) != len(v["preferred_batch_sizes"]) and v["max_batch_size"] > 0
        seen.setdefault(candidate, None)
    if trimmed and any(values["preferred_batch_sizes"]):
        notes.append("preferred batch sizes above max_batch_size were dropped from those candidates")
    combos = math.prod(len(v) for v in values.values())
    if combos != len(seen):
        notes.append(f"{combos} combinations, {len(seen)} distinct candidates (batching off ignores its settings)")
    return list(seen), notes
