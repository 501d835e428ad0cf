"""A model's ``config.toml``: backend, signature, batching, instances, device and backend options."""

from __future__ import annotations

import math
import re
import tomllib
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from driftline.config import CaptureSettings, SloSettings
from driftline.errors import ConfigError
from driftline.repository.names import check_alias_name

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "QUALITY_METRICS",
    "BatchingConfig",
    "CaptureOverrides",
    "ModelConfig",
    "OnnxOptions",
    "QualityConfig",
    "QualityRule",
    "SloOverrides",
    "Task",
    "TensorConfig",
    "TorchOptions",
    "VersionPolicy",
    "load_model_config",
]

DATATYPES = frozenset(
    {
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    }
)
_DEVICE = re.compile(r"\A(cpu|auto|cuda(:\d+)?)\Z")  # \Z: "$" would let a trailing newline through


#: What a model predicts, for its quality metrics and the type of its feedback targets.
Task = Literal["classification", "regression"]


class TensorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One input or output: its name, OIP datatype and full shape (-1 for a dynamic dimension).

    With batching on (``max_batch_size > 0``) the first dimension is the batch dimension.
    """

    name: str
    datatype: str
    shape: list[int]

    def __post_init__(self) -> None:
        if self.datatype not in DATATYPES:
            raise ValueError(f"tensor {self.name!r}: unknown datatype {self.datatype!r}; one of {sorted(DATATYPES)}")
        if any(dim < -1 for dim in self.shape):
            raise ValueError(f"tensor {self.name!r}: shape dimensions must be >= -1, got {self.shape}")


class BatchingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Dynamic batching, Triton's fields: see ``_core.BatchQueue``."""

    preferred_batch_sizes: list[int] = []
    # Waited only while another instance of the model is busy: an idle model runs a request at once.
    max_queue_delay_us: int = 1000
    max_queue_size: int = 4096
    priority_levels: int = 1
    default_priority_level: int = 0
    default_timeout_us: int = 0
    preserve_ordering: bool = False
    # Opt-in: run a request on the event loop itself when the model is idle, no other request is in flight and its
    # recent batches took at most this long. It saves the two thread hand-offs (~100 us on a 2-core machine) at low
    # concurrency, but under load the loop cannot see requests that have not started yet, so everything runs on the
    # loop and batching never forms (measured: small MLP at concurrency 64, 10.2k req/s with it, 17.7k without).
    # 0 (the default) turns it off.
    inline_max_us: int = 0


class OnnxOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """onnxruntime session options."""

    intra_op_threads: int = 1
    inter_op_threads: int = 1
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = "all"


class TorchOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """torch runtime options."""

    threads: int = 1


class VersionPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which versions are loaded, as Triton's version_policy: the latest N, all, or specific ones."""

    policy: Literal["latest", "all", "specific"] = "latest"
    latest: int = 1
    versions: list[int] = []

    def select(self, available: list[int]) -> list[int]:
        """Return the versions to load out of those on disk, ascending."""
        ordered = sorted(available)
        if self.policy == "all":
            return ordered
        if self.policy == "specific":
            return [v for v in ordered if v in set(self.versions)]
        return ordered[-self.latest :]


class CaptureOverrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's ``[capture]``: each key given replaces the server's ``[capture]`` default (omitted: inherited)."""

    enabled: bool | None = None
    sample_rate: float | None = None
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    exclude: list[str] | None = None
    max_age_s: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        self.over(CaptureSettings())  # each key is checked by the rules the server-wide one meets

    def over(self, default: CaptureSettings) -> CaptureSettings:
        """The model's capture settings: ``default`` with this table's keys in place of its own."""
        given = {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not None}
        return msgspec.structs.replace(default, **given)


class SloOverrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's ``[slo]``: each key given replaces the server's ``[slo]`` default (omitted: inherited)."""

    enabled: bool | None = None
    availability: float | None = None
    latency_threshold_ms: float | None = None
    latency_objective: float | None = None
    period_days: float | None = None

    def __post_init__(self) -> None:
        self.over(SloSettings())  # each key is checked by the rules the server-wide one meets

    def over(self, default: SloSettings) -> SloSettings:
        """The model's SLO settings: ``default`` with this table's keys in place of its own."""
        given = {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not None}
        return msgspec.structs.replace(default, **given)


#: Metrics a quality rule may watch: (task, True when higher is better, needs score_output). A metric where higher
#: is better fires ``below`` a value, an error metric ``above`` one; the ``estimated_*`` ones are CBPE's estimates
#: before labels arrive, which may also fire on a ``drop`` below their value on the reference data.
QUALITY_METRICS: Final[dict[str, tuple[Task, bool, bool]]] = {
    "accuracy": ("classification", True, False),
    "precision_macro": ("classification", True, False),
    "recall_macro": ("classification", True, False),
    "f1_macro": ("classification", True, False),
    "roc_auc": ("classification", True, True),
    "log_loss": ("classification", False, True),
    "estimated_accuracy": ("classification", True, True),
    "estimated_roc_auc": ("classification", True, True),
    "mae": ("regression", False, False),
    "rmse": ("regression", False, False),
    "mape": ("regression", False, False),
    "r2": ("regression", True, False),
}
_SPAN = re.compile(r"\A([0-9]+(?:\.[0-9]+)?)([smhd])\Z")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class QualityRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[quality.alerts]]``: fire when ``metric`` crosses a threshold over a window of labeled rows.

    Exactly one threshold: ``below`` (a metric where higher is better), ``above`` (an error metric) or ``drop``
    (an estimated metric, this far below its reference value). The window: the last ``last_rows`` labeled rows,
    or the rows captured in the ``last`` span ("90s", "30m", "1h", "7d"); neither: the last ``min_labeled``
    labeled rows. With fewer than ``min_labeled`` labeled rows in it the rule is not judged (its state stays).
    """

    metric: str
    below: float | None = None
    above: float | None = None
    drop: float | None = None
    min_labeled: int = 100
    last_rows: int | None = None
    last: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in QUALITY_METRICS:
            raise ValueError(f"metric: unknown quality metric {self.metric!r}; one of {sorted(QUALITY_METRICS)}")
        given = [k for k in ("below", "above", "drop") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of below, above or drop is needed, got {given or 'none'}")
        key, value = given[0], self.threshold
        if not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value}")
        _, higher_is_better, _ = QUALITY_METRICS[self.metric]
        estimated = self.metric.startswith("estimated_")
        if key == "drop" and not (estimated and value > 0):
            raise ValueError(f"drop is an estimated metric's (estimated_*), a positive number; metric {self.metric!r}")
        if key == "above" and higher_is_better:
            raise ValueError(f"above: {self.metric} is better when higher; a rule on it takes below")
        if key == "below" and not higher_is_better:
            raise ValueError(f"below: {self.metric} is an error (better when lower); a rule on it takes above")
        if self.min_labeled < 1:
            raise ValueError(f"min_labeled must be >= 1, got {self.min_labeled}")
        if self.last_rows is not None and self.last is not None:
            raise ValueError("last_rows and last: give one window, not both")
        if self.last_rows is not None and self.last_rows < self.min_labeled:
            raise ValueError(f"last_rows ({self.last_rows}) must be >= min_labeled ({self.min_labeled})")
        if self.last is not None:
            self.span  # noqa: B018 - parsed here so that a bad span is refused at load

    @property
    def op(self) -> Literal["below", "above", "drop"]:
        """Which threshold the rule has."""
        return "below" if self.below is not None else "above" if self.above is not None else "drop"

    @property
    def threshold(self) -> float:
        """The value of that threshold."""
        value = self.below if self.below is not None else self.above if self.above is not None else self.drop
        assert value is not None  # one is set: checked at load
        return value

    @property
    def span(self) -> timedelta | None:
        """The ``last`` window as a timedelta (None: a window of labeled rows)."""
        if self.last is None:
            return None
        match = _SPAN.match(self.last)
        if match is None or float(match[1]) <= 0:
            raise ValueError(f"last must be a positive span such as '90s', '30m', '1h' or '7d', got {self.last!r}")
        return timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])


class QualityConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's ``[quality]``: what its predictions are, so that labels can be checked and compared with them.

    ``task`` decides what a target may be (driftline.feedback.targets); ``label_output`` is the output holding
    the predicted class or value; ``score_output`` a classifier's probabilities, in the order of ``classes``;
    ``positive`` the class ROC AUC is about.
    """

    task: Task
    label_output: str
    score_output: str | None = None
    classes: list[str | int] | None = None
    positive: str | int | None = None
    alerts: list[QualityRule] = []

    def __post_init__(self) -> None:
        for i, rule in enumerate(self.alerts):
            task, _, scores = QUALITY_METRICS[rule.metric]
            if task != self.task:
                raise ValueError(f"quality.alerts[{i}].metric: {rule.metric} is a {task}'s, task is {self.task!r}")
            if scores and self.score_output is None:
                raise ValueError(f"quality.alerts[{i}].metric: {rule.metric} needs quality.score_output")
        if not self.label_output:
            raise ValueError("quality.label_output must name an output")
        if self.task == "regression":
            for key in ("score_output", "classes", "positive"):
                if getattr(self, key) is not None:
                    raise ValueError(f"quality.{key} is a classification's key; task is 'regression'")
        if self.score_output is not None and self.classes is None:
            raise ValueError("quality.classes is required with quality.score_output (the class of each score)")
        if self.classes is not None:
            if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
                raise ValueError(f"quality.classes must be two or more distinct classes, got {self.classes}")
            if self.positive is not None and self.positive not in self.classes:
                raise ValueError(f"quality.positive {self.positive!r} is not one of quality.classes {self.classes}")


class ModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything ``config.toml`` may say about a model; every key has a default."""

    backend: Literal["onnx", "torch"] | None = None
    max_batch_size: int = 32
    device: str = "cpu"
    instances: int = 1
    warmup: bool = True
    inputs: list[TensorConfig] | None = None
    outputs: list[TensorConfig] | None = None
    batching: BatchingConfig = BatchingConfig()
    onnx: OnnxOptions = OnnxOptions()
    torch: TorchOptions = TorchOptions()
    version_policy: VersionPolicy = VersionPolicy()
    # Aliases seeded into the store on first start (alias -> version); the store wins afterwards.
    aliases: dict[str, int] = {}
    # Overrides the server's default_alias for this model.
    default_alias: str | None = None
    # Free-form sections owned by other parts (drift settings); validated by their owners.
    drift: dict[str, Any] = {}
    capture: CaptureOverrides = CaptureOverrides()
    # None: no labels can be checked for this model, so feedback for it is refused.
    quality: QualityConfig | None = None
    slo: SloOverrides = SloOverrides()  # over the server's [slo] (docs/slo.md)

    def __post_init__(self) -> None:
        b = self.batching
        if self.max_batch_size < 0:
            raise ValueError(f"max_batch_size must be >= 0 (0 turns batching off), got {self.max_batch_size}")
        if not _DEVICE.match(self.device):
            raise ValueError(f"device must be 'cpu', 'auto', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.instances < 1:
            raise ValueError(f"instances must be >= 1, got {self.instances}")
        bad = [s for s in b.preferred_batch_sizes if s < 1 or s > max(self.max_batch_size, 1)]
        if bad:
            raise ValueError(
                f"batching.preferred_batch_sizes {bad} must be within 1..max_batch_size ({self.max_batch_size})"
            )
        for key in ("max_queue_delay_us", "max_queue_size", "default_timeout_us", "inline_max_us"):
            if getattr(b, key) < 0:
                raise ValueError(f"batching.{key} must be >= 0")
        if b.priority_levels < 1 or not 0 <= b.default_priority_level <= b.priority_levels:
            raise ValueError(
                "batching.priority_levels must be >= 1 and default_priority_level within 0..priority_levels"
            )
        for alias, version in self.aliases.items():
            check_alias_name(alias)
            if version < 1:
                raise ValueError(f"aliases.{alias} must be a version >= 1, got {version}")
        if self.version_policy.latest < 1:
            raise ValueError("version_policy.latest must be >= 1")
        for section, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            names = [t.name for t in tensors or ()]
            if len(set(names)) != len(names):
                raise ValueError(f"{section}: duplicate tensor names {names}")
            if tensors and self.max_batch_size > 0 and any(not t.shape for t in tensors):
                raise ValueError(f"{section}: with batching on every tensor needs a batch dimension")
        if self.quality is not None and self.outputs is not None:
            declared = sorted(t.name for t in self.outputs)
            for key in ("label_output", "score_output"):
                output = getattr(self.quality, key)
                if output is not None and output not in declared:
                    raise ValueError(f"quality.{key} {output!r} is not one of the outputs {declared}")


def load_model_config(path: Path) -> ModelConfig:
    """Read and validate one ``config.toml``; a missing file means all defaults.

    Raises:
        ConfigError: naming the file and the key that is wrong.
    """
    if not path.exists():
        return ModelConfig()
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return msgspec.convert(raw, ModelConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
