"""The bodies of Triton's protocol extensions (:mod:`driftline.http.triton`) in Triton's own JSON form: the model
configuration (what perf_analyzer reads before it starts), the statistics and the repository index.

A part Triton leaves out of a body is ``UNSET`` here (left out), so the JSON is what Triton's clients expect and the
OpenAPI schema documents every field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec
from msgspec import UNSET, UnsetType

if TYPE_CHECKING:
    from driftline.backends.base import TensorSpec
    from driftline.serving.loaded import LoadedModel

__all__ = ["IndexRow", "StatisticsAnswer", "TritonModelConfig", "triton_config"]


class TritonTensor(msgspec.Struct, frozen=True):
    """An input or output: Triton's dims leave out the batch dimension when the model batches."""

    name: str
    data_type: str
    dims: list[int]


class InstanceGroup(msgspec.Struct, frozen=True):
    """Where the model's instances run; ``gpus`` only on a GPU."""

    name: str
    count: int
    kind: Literal["KIND_GPU", "KIND_CPU"]
    gpus: list[int] | UnsetType = UNSET


class LatestVersions(msgspec.Struct, frozen=True):
    """Serve the newest N versions."""

    num_versions: int


class SpecificVersions(msgspec.Struct, frozen=True):
    """Serve these versions."""

    versions: list[int]


class AllVersions(msgspec.Struct, frozen=True):
    """Serve every version (an empty object in Triton's form)."""


class VersionPolicy(msgspec.Struct, frozen=True):
    """Triton's one-of: exactly one field is present."""

    latest: LatestVersions | UnsetType = UNSET
    specific: SpecificVersions | UnsetType = UNSET
    all_versions: AllVersions | UnsetType = msgspec.field(default=UNSET, name="all")


class StringValue(msgspec.Struct, frozen=True):
    """A string parameter, as Triton wraps one."""

    string_value: str


class QueuePolicy(msgspec.Struct, frozen=True):
    """The queue's bound and timeout."""

    max_queue_size: int
    default_timeout_microseconds: int
    timeout_action: Literal["REJECT"]


class DynamicBatching(msgspec.Struct, frozen=True):
    """The batcher's settings."""

    preferred_batch_size: list[int]
    max_queue_delay_microseconds: int
    preserve_ordering: bool
    priority_levels: int
    default_priority_level: int
    default_queue_policy: QueuePolicy


class TritonModelConfig(msgspec.Struct, frozen=True):
    """A model's configuration; ``dynamic_batching`` only when it batches. ``parameters`` is Triton's map of named
    values: here ``device`` (where the model runs) and ``notes`` (why, when that differs from its config.toml)."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[TritonTensor]
    output: list[TritonTensor]
    instance_group: list[InstanceGroup]
    version_policy: VersionPolicy
    parameters: dict[str, StringValue]
    dynamic_batching: DynamicBatching | UnsetType = UNSET


def _tensor(spec: TensorSpec, batching: bool) -> TritonTensor:
    dims = list(spec.shape[1:] if batching else spec.shape)
    datatype = "STRING" if spec.datatype == "BYTES" else spec.datatype
    return TritonTensor(name=spec.name, data_type=f"TYPE_{datatype}", dims=dims)


def _policy(model: LoadedModel) -> VersionPolicy:
    policy = model.source.config.version_policy
    if policy.policy == "latest":
        return VersionPolicy(latest=LatestVersions(num_versions=policy.latest))
    if policy.policy == "specific":
        return VersionPolicy(specific=SpecificVersions(versions=list(policy.versions)))
    return VersionPolicy(all_versions=AllVersions())


def triton_config(model: LoadedModel) -> TritonModelConfig:
    """The model's configuration in Triton's form."""
    config = model.source.config
    batching = config.max_batch_size > 0
    b = config.batching
    backend = model.backends[0]
    gpu = backend.device.startswith("cuda")
    dynamic = DynamicBatching(
        preferred_batch_size=list(b.preferred_batch_sizes),
        max_queue_delay_microseconds=b.max_queue_delay_us,
        preserve_ordering=b.preserve_ordering,
        priority_levels=b.priority_levels,
        default_priority_level=b.default_priority_level,
        default_queue_policy=QueuePolicy(
            max_queue_size=b.max_queue_size,
            default_timeout_microseconds=b.default_timeout_us,
            timeout_action="REJECT",
        ),
    )
    group = InstanceGroup(
        name=f"{model.name}_0",
        count=config.instances,
        kind="KIND_GPU" if gpu else "KIND_CPU",
        gpus=[int(backend.device.partition(":")[2] or 0)] if gpu else UNSET,
    )
    return TritonModelConfig(
        name=model.name,
        platform=backend.platform,
        backend="onnxruntime" if backend.platform.startswith("onnx") else "pytorch",
        max_batch_size=config.max_batch_size,
        input=[_tensor(t, batching) for t in model.inputs],
        output=[_tensor(t, batching) for t in model.outputs],
        instance_group=[group],
        version_policy=_policy(model),
        parameters={
            "device": StringValue(backend.device),
            "notes": StringValue("; ".join([*backend.notes, *model.source.notes])),
        },
        dynamic_batching=dynamic if batching else UNSET,
    )


class Duration(msgspec.Struct, frozen=True):
    """How many, and their total time in nanoseconds."""

    count: int
    ns: int


class InferenceStats(msgspec.Struct, frozen=True):
    """Per phase durations of every request (the cache counters stay zero: driftline has no response cache)."""

    success: Duration
    fail: Duration
    queue: Duration
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration
    cache_hit: Duration
    cache_miss: Duration


class BatchStats(msgspec.Struct, frozen=True):
    """Per phase durations of the batches of one size."""

    batch_size: int
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration


class ModelStatistics(msgspec.Struct, frozen=True):
    """One model version's counters; ``last_inference`` in milliseconds since the epoch (0: none yet)."""

    name: str
    version: str
    last_inference: int
    inference_count: int
    execution_count: int
    inference_stats: InferenceStats
    batch_stats: list[BatchStats]


class StatisticsAnswer(msgspec.Struct, frozen=True):
    """Triton's statistics extension answer."""

    model_stats: list[ModelStatistics]


class IndexRow(msgspec.Struct, frozen=True, kw_only=True):
    """A repository index row: ``version`` is absent for a model with none loaded or failed, ``reason`` present
    only on an UNAVAILABLE row."""

    name: str
    version: str | UnsetType = UNSET
    state: Literal["READY", "UNAVAILABLE"]
    reason: str | UnsetType = UNSET
