"""What `driftline tune` works with: the SLO, the load, the knobs, a candidate configuration and its measurements.

The contract every part of ``driftline.tune`` codes against (see docs/tuning.md): the load generator feeds
`Window` s, the measurement turns them into a `Point` per load level and a `Measurement` per candidate, the search
chooses candidates, the recommendation ranks measurements into a `TuneResult`, the report and the CLI print it.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import msgspec

from driftline.errors import ConfigError

__all__ = [
    "DEFAULTS",
    "KNOBS",
    "PERCENTILES",
    "Candidate",
    "Knob",
    "Load",
    "LoadMode",
    "Measurement",
    "Percentile",
    "Point",
    "Slo",
    "TuneResult",
    "Window",
    "config_patch",
    "parse_load",
    "parse_slo",
]

Percentile = Literal["p50", "p90", "p95", "p99"]
PERCENTILES: Final[tuple[Percentile, ...]] = ("p50", "p90", "p95", "p99")
LoadMode = Literal["concurrency", "rate", "trace"]


class Knob(msgspec.Struct, frozen=True):
    """One setting the tuner varies: where it lives in config.toml (None: a server flag) and its value type."""

    name: str
    #: ("max_batch_size",) for a top-level key, ("batching", "max_queue_delay_us") for a key of a table; the
    #: backend-dependent ``threads`` knob names its table per backend in `config_patch`. None: not in config.toml.
    key: tuple[str, ...] | None
    kind: Literal["int", "int_list", "device"]
    minimum: int = 0
    help: str = ""


#: Every knob, in the order the table and the patch list them.
KNOBS: Final[dict[str, Knob]] = {
    k.name: k
    for k in (
        Knob("max_batch_size", ("max_batch_size",), "int", 0, "largest batch the batcher forms (0: batching off)"),
        Knob(
            "max_queue_delay_us",
            ("batching", "max_queue_delay_us"),
            "int",
            0,
            "how long a request may wait for a batch to fill while every instance is busy",
        ),
        Knob(
            "preferred_batch_sizes",
            ("batching", "preferred_batch_sizes"),
            "int_list",
            1,
            "batch sizes the batcher cuts at when it can",
        ),
        Knob("instances", ("instances",), "int", 1, "model instances (sessions) that run batches in parallel"),
        Knob("threads", ("<backend>", "threads"), "int", 1, "onnxruntime intra-op threads / torch threads"),
        Knob("workers", None, "int", 1, "server worker processes (`driftline serve --workers`)"),
        Knob("device", ("device",), "device", 0, "cpu or cuda:N"),
    )
}

#: driftline's own defaults (ModelConfig's and the server's), the configuration the gain is measured against when
#: the model's config.toml leaves a knob unset.
DEFAULTS: Final[dict[str, Any]] = {
    "max_batch_size": 32,
    "max_queue_delay_us": 1000,
    "preferred_batch_sizes": [],
    "instances": 1,
    "threads": 1,
    "workers": 1,
    "device": "cpu",
}


class Candidate(msgspec.Struct, frozen=True):
    """One configuration: a value for every knob (see `KNOBS`), hashable so a search can remember what it measured."""

    max_batch_size: int = 32
    max_queue_delay_us: int = 1000
    preferred_batch_sizes: tuple[int, ...] = ()
    instances: int = 1
    threads: int = 1
    workers: int = 1
    device: str = "cpu"

    def values(self) -> dict[str, Any]:
        """Knob name -> value (lists as lists), in `KNOBS` order."""
        out = msgspec.structs.asdict(self)
        out["preferred_batch_sizes"] = list(self.preferred_batch_sizes)
        return out

    def label(self) -> str:
        """A short, stable name for tables and progress lines, e.g. ``mbs=32 delay=1000 inst=1 thr=1 w=1 cpu``."""
        pref = "+".join(map(str, self.preferred_batch_sizes))
        parts = [f"mbs={self.max_batch_size}", f"delay={self.max_queue_delay_us}"]
        parts += [f"pref={pref}"] if pref else []
        parts += [f"inst={self.instances}", f"thr={self.threads}", f"w={self.workers}", self.device]
        return " ".join(parts)


def config_patch(candidate: Candidate, backend: str) -> dict[str, Any]:
    """The config.toml keys a candidate sets, as nested tables: ``{"max_batch_size": 8, "batching": {...}, ...}``.

    ``threads`` goes to ``[onnx] intra_op_threads`` or ``[torch] threads`` by the model's backend; ``workers`` is a
    server flag and is not in the patch. Every other knob is always written, so the patch pins the whole candidate.
    """
    patch: dict[str, Any] = {
        "max_batch_size": candidate.max_batch_size,
        "instances": candidate.instances,
        "device": candidate.device,
        "batching": {
            "max_queue_delay_us": candidate.max_queue_delay_us,
            "preferred_batch_sizes": list(candidate.preferred_batch_sizes),
        },
    }
    if backend == "torch":
        patch["torch"] = {"threads": candidate.threads}
    else:
        patch["onnx"] = {"intra_op_threads": candidate.threads}
    return patch


class Slo(msgspec.Struct, frozen=True):
    """The service-level objective: a latency percentile under a limit, a throughput floor, or both."""

    percentile: Percentile | None = None
    limit_ms: float | None = None
    min_rps: float | None = None

    def describe(self) -> str:
        """``p99 <= 10 ms``, ``>= 500 req/s``, or both joined by ``and``."""
        parts = []
        if self.percentile is not None and self.limit_ms is not None:
            parts.append(f"{self.percentile} <= {self.limit_ms:g} ms")
        if self.min_rps is not None:
            parts.append(f">= {self.min_rps:g} req/s")
        return " and ".join(parts)


_LATENCY = re.compile(r"\A(p50|p90|p95|p99)=(\d+(?:\.\d+)?)(us|ms|s)\Z")
_THROUGHPUT = re.compile(r"\A(?:rps|throughput)>?=(\d+(?:\.\d+)?)\Z")
_UNIT_MS: Final[dict[str, float]] = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_slo(texts: list[str]) -> Slo:
    """``["p99=10ms"]``, ``["rps>=500"]`` or both (``--slo`` may be given twice, or once with a comma).

    Raises:
        ConfigError: naming the text that is wrong and what is accepted.
    """
    percentile: Percentile | None = None
    limit: float | None = None
    floor: float | None = None
    items = [item.strip() for text in texts for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError("--slo: give a latency limit (p99=10ms) and/or a throughput floor (rps>=500)")
    for item in items:
        if m := _LATENCY.match(item):
            if percentile is not None:
                raise ConfigError(f"--slo {item!r}: one latency limit only (already {percentile}={limit:g}ms)")
            percentile, limit = m.group(1), float(m.group(2)) * _UNIT_MS[m.group(3)]  # type: ignore[assignment]
            if limit <= 0:
                raise ConfigError(f"--slo {item!r}: the limit must be above 0")
        elif m := _THROUGHPUT.match(item):
            floor = float(m.group(1))
            if floor <= 0:
                raise ConfigError(f"--slo {item!r}: the floor must be above 0")
        else:
            raise ConfigError(
                f"--slo {item!r}: expected PERCENTILE=LIMIT (p50, p90, p95 or p99; us, ms or s: p99=10ms) "
                "or rps>=N (a throughput floor)"
            )
    return Slo(percentile, limit, floor)


class Load(msgspec.Struct, frozen=True):
    """The traffic each candidate is measured under: closed-loop concurrencies, open-loop rates, or a replay."""

    mode: LoadMode
    #: Concurrencies (closed loop) or request rates per second (open loop, Poisson arrivals); for ``trace``, the
    #: replay speeds (1.0: the captured arrival times as they were).
    levels: tuple[float, ...]
    request_batch: int = 1

    def describe(self, level: float) -> str:
        """``c=8``, ``500 req/s`` or ``trace x1``."""
        if self.mode == "concurrency":
            return f"c={level:g}"
        if self.mode == "rate":
            return f"{level:g} req/s"
        return f"trace x{level:g}"


MAX_CONCURRENCY: Final = 1024
MAX_RATE: Final = 1_000_000.0
MAX_LEVELS: Final = 16


def parse_load(text: str, request_batch: int = 1) -> Load:
    """``concurrency=1,8,32,64``, ``rate=500,1000`` or ``trace`` (``trace=1,2`` replays at 1x and 2x speed).

    Raises:
        ConfigError: naming the text that is wrong and what is accepted.
    """
    mode, _, values = text.partition("=")
    mode = mode.strip()
    if mode not in ("concurrency", "rate", "trace"):
        raise ConfigError(f"--load {text!r}: expected concurrency=N,N,..., rate=N,N,... or trace")
    if mode == "trace" and not values:
        values = "1"
    try:
        levels = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--load {text!r}: the levels must be numbers separated by commas") from None
    if not levels:
        raise ConfigError(f"--load {text!r}: give at least one level ({mode}=...)")
    if len(levels) > MAX_LEVELS:
        raise ConfigError(f"--load {text!r}: at most {MAX_LEVELS} levels")
    if mode == "concurrency" and any(v != int(v) or not 1 <= v <= MAX_CONCURRENCY for v in levels):
        raise ConfigError(f"--load {text!r}: concurrencies must be whole numbers in 1..{MAX_CONCURRENCY}")
    if mode in ("rate", "trace") and any(not 0 < v <= MAX_RATE for v in levels):
        raise ConfigError(f"--load {text!r}: rates and speeds must be above 0 (at most {MAX_RATE:g})")
    if not 1 <= request_batch <= 4096:
        raise ConfigError(f"--request-batch {request_batch}: must be in 1..4096")
    return Load(mode, tuple(sorted(set(levels))), request_batch)  # type: ignore[arg-type]


class Window(msgspec.Struct, frozen=True):
    """One measurement window: what completed in it (latencies from a request's scheduled start to its answer)."""

    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    #: CPU seconds the load generator's threads used in the window, per wall second (1.0: one core busy).
    generator_cpu: float = 0.0
    #: Open loop: arrivals still waiting for a free connection at the window's end (a server that keeps up: ~0).
    backlog: int = 0


class Point(msgspec.Struct, frozen=True):
    """A candidate measured at one load level: the last stable windows pooled (or all of them, when unstable)."""

    level: float
    rps: float
    rows_per_s: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int
    #: Server CPU time (all its processes) per answered request, in milliseconds.
    server_cpu_ms_per_req: float
    #: The server's peak resident memory over the measurement (all its processes), in MiB.
    server_peak_rss_mib: float
    #: The load generator's CPU per wall second during the measured windows.
    generator_cpu: float
    #: True when the generator, not the server, was the limit (the measurement says nothing about the server).
    generator_limited: bool
    #: perf_analyzer's rule: the last 3 windows within 10% of their mean for throughput and the SLO percentile.
    stable: bool
    windows: list[Window]
    #: Open loop: the rate asked for (None in closed loop).
    offered_rps: float | None = None

    def latency_ms(self, percentile: Percentile) -> float:
        """The point's latency at ``p50`` .. ``p99``."""
        return float(getattr(self, f"{percentile}_ms"))


class Measurement(msgspec.Struct, frozen=True):
    """A candidate measured at every load level, or why it could not be (a server that did not start)."""

    candidate: Candidate
    points: list[Point]
    #: Why the candidate has no points: the server failed to start with it, the device is absent, and so on.
    failed: str | None = None
    seconds: float = 0.0


class TuneResult(msgspec.Struct):
    """Everything a tune found: the JSON file, the HTML report and the CLI summary are all made from this."""

    model: str
    version: int | None
    backend: str
    slo: Slo
    load: Load
    search: Literal["brute", "quick"]
    space: dict[str, list[Any]]
    points_in_space: int
    measurements: list[Measurement]
    #: The default configuration's measurement (also among ``measurements`` when it is in the space).
    default: Measurement | None
    #: ``measurements`` best first by the objective (candidates that meet the SLO before those that do not).
    ranked: list[Measurement]
    recommended: Candidate | None
    #: The recommended point's objective value and how far inside the SLO it is (limit - percentile, ms).
    objective: float | None
    margin_ms: float | None
    #: The config.toml text to add to the model's config (knobs the recommendation sets), and the serve flags.
    patch_toml: str
    serve_flags: list[str]
    notes: list[str]
    elapsed_s: float
    budget_s: float
    exhausted_budget: bool = False
    #: Candidates of the space that were measured (the default configuration counts when it is in the space).
    points_measured: int = 0
    extra: dict[str, Any] = {}
