"""Which version answers a request: aliases, the default alias, canary and sticky A/B splits, and shadow copies.

Everything here is immutable and swapped whole (one attribute store), so the event loop reads a consistent routing
state without locks while the lifecycle service changes it.

A *target* is a version number ("3") or an alias name ("challenger"); targets resolve when a request arrives, so a
canary at "challenger" follows the alias when it moves.
"""

from __future__ import annotations

import random
import zlib
from typing import TYPE_CHECKING

import msgspec

from driftline.repository.names import is_version

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Canary", "ModelRoutes", "RoutingPolicy", "Shadow", "Split", "policy_tag", "policy_targets"]


def _check_percent(field: str, value: float) -> None:
    if not 0 <= value <= 100:
        raise ValueError(f"{field} must be within 0..100, got {value}")


class Canary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Send ``percent`` of unpinned traffic to ``target``; the rest goes to the default alias."""

    target: str
    percent: float

    def __post_init__(self) -> None:
        _check_percent("canary.percent", self.percent)


class Split(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Sticky A/B: a hash of the routing key picks the target, so one key always meets one version.

    The key is the request parameter named ``parameter`` or the HTTP header named ``header`` (exactly one is set).
    ``weights`` maps targets to percentages that add up to 100. A request without the key goes to the default alias.
    """

    weights: dict[str, float]
    parameter: str | None = None
    header: str | None = None

    def __post_init__(self) -> None:
        if (self.parameter is None) == (self.header is None):
            raise ValueError("split needs exactly one of 'parameter' (a request parameter) or 'header' as its key")
        if len(self.weights) < 2:
            raise ValueError(f"split.weights needs at least two targets, got {sorted(self.weights)}")
        for target, weight in self.weights.items():
            _check_percent(f"split.weights[{target!r}]", weight)
        total = sum(self.weights.values())
        if abs(total - 100.0) > 1e-6:
            raise ValueError(f"split.weights must add up to 100, they add up to {total:g}")


class Shadow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Copy ``percent`` of requests to ``target`` off the response path and compare the answers."""

    target: str
    percent: float = 100.0

    def __post_init__(self) -> None:
        _check_percent("shadow.percent", self.percent)


class RoutingPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A model's run-time routing; canary and split are exclusive, shadow combines with either."""

    canary: Canary | None = None
    split: Split | None = None
    shadow: Shadow | None = None

    def __post_init__(self) -> None:
        if self.canary is not None and self.split is not None:
            raise ValueError("a routing policy has either a canary or a split, not both")

    @property
    def empty(self) -> bool:
        """No canary, split or shadow."""
        return self.canary is None and self.split is None and self.shadow is None


def policy_targets(policy: RoutingPolicy) -> list[str]:
    """Every target a policy names."""
    targets: list[str] = []
    if policy.canary is not None:
        targets.append(policy.canary.target)
    if policy.split is not None:
        targets.extend(policy.split.weights)
    if policy.shadow is not None:
        targets.append(policy.shadow.target)
    return targets


def policy_tag(policy: RoutingPolicy) -> int:
    """A number for a routing policy, the same in every process and restart (a CRC of its JSON), never 0.

    Traffic counts carry the tag of the policy that routed each request (0: the request named its version), so an
    experiment reads the requests its own policy routed and none from before it was set.
    """
    return zlib.crc32(msgspec.json.encode(policy)) or 1


def _bucket(key: str) -> float:
    """A stable position in [0, 100) for a routing key: the same key lands in the same bucket in every process."""
    return (zlib.crc32(key.encode()) % 10_000) / 100.0


class ModelRoutes(msgspec.Struct, frozen=True):
    """The routing state of one model: its aliases, the default alias and the run-time policy."""

    aliases: dict[str, int] = msgspec.field(default_factory=dict)
    default_alias: str | None = None
    policy: RoutingPolicy = RoutingPolicy()

    def resolve(self, target: str) -> int | None:
        """A version number or an alias -> the version, or None when the alias is not set."""
        if is_version(target):
            return int(target)
        return self.aliases.get(target)

    def default(self, loaded: Iterable[int]) -> int | None:
        """The version a request without a version meets before any split: the default alias, else the newest."""
        if self.default_alias is not None:
            version = self.aliases.get(self.default_alias)
            if version is not None:
                return version
        return max(loaded, default=None)

    def pick(
        self,
        loaded: Mapping[int, object],
        parameters: Mapping[str, object] | None,
        headers: Sequence[tuple[bytes, bytes]],
    ) -> int | None:
        """The version for an unpinned request (the canary or split choice; else the default)."""
        policy = self.policy
        if policy.canary is not None:
            candidate = self.resolve(policy.canary.target)
            if candidate in loaded and random.random() * 100.0 < policy.canary.percent:  # noqa: S311 - traffic split
                return candidate
        elif policy.split is not None:
            key = _routing_key(policy.split, parameters, headers)
            if key is not None:
                point = _bucket(key)
                edge = 0.0
                for target, weight in policy.split.weights.items():
                    edge += weight
                    if point < edge:
                        chosen = self.resolve(target)
                        if chosen in loaded:
                            return chosen
                        break
        return self.default(loaded)

    def shadow_of(self, primary: int, loaded: Mapping[int, object]) -> int | None:
        """The version that gets a copy of a request ``primary`` answers, if any."""
        shadow = self.policy.shadow
        if shadow is None:
            return None
        target = self.resolve(shadow.target)
        if target is None or target == primary or target not in loaded:
            return None
        if shadow.percent < 100.0 and random.random() * 100.0 >= shadow.percent:  # noqa: S311 - sampling
            return None
        return target

    def referenced(self) -> set[int]:
        """Versions an alias or the policy points at (kept loaded whatever the version policy says)."""
        versions = set(self.aliases.values())
        for target in policy_targets(self.policy):
            if is_version(target):
                versions.add(int(target))
        return versions


def _routing_key(
    split: Split, parameters: Mapping[str, object] | None, headers: Sequence[tuple[bytes, bytes]]
) -> str | None:
    if split.parameter is not None:
        value = parameters.get(split.parameter) if parameters else None
        return None if value is None else str(value)
    name = split.header.lower().encode() if split.header else b""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
