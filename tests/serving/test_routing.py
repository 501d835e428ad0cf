"""Routing policies: validation, canary proportions, sticky splits, shadow selection, alias resolution."""

from __future__ import annotations

import msgspec
import pytest

from driftline.serving.routing import Canary, ModelRoutes, RoutingPolicy, Shadow, Split

LOADED = {1: object(), 2: object(), 3: object()}


def routes(**policy: object) -> ModelRoutes:
    return ModelRoutes(
        aliases={"champion": 1, "challenger": 2},
        default_alias="champion",
        policy=msgspec.convert(policy, RoutingPolicy),
    )


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"split": {"parameter": "user", "weights": {"champion": 50, "challenger": 40}}},
            "add up to 100, they add up to 90",
        ),
        ({"split": {"weights": {"champion": 50, "challenger": 50}}}, "exactly one of 'parameter'"),
        ({"split": {"header": "x", "parameter": "y", "weights": {"a": 50, "b": 50}}}, "exactly one of 'parameter'"),
        ({"split": {"header": "x", "weights": {"a": 100}}}, "at least two targets"),
        ({"canary": {"target": "2", "percent": 120}}, "canary.percent must be within 0..100"),
        ({"shadow": {"target": "2", "percent": -1}}, "shadow.percent must be within 0..100"),
        (
            {"canary": {"target": "2", "percent": 5}, "split": {"header": "x", "weights": {"a": 50, "b": 50}}},
            "either a canary or a split",
        ),
        ({"mirror": {"target": "2"}}, "unknown field"),
    ],
)
def test_bad_policies_are_refused_with_the_field(policy, message):
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(policy, RoutingPolicy)


def test_default_alias_and_newest_fallback():
    r = routes()
    assert r.pick(LOADED, None, ()) == 1
    assert ModelRoutes().pick(LOADED, None, ()) == 3  # no alias: the newest loaded version
    assert ModelRoutes(aliases={"x": 2}, default_alias="champion").default(LOADED) == 3
    assert r.resolve("challenger") == 2
    assert r.resolve("7") == 7
    assert r.resolve("nope") is None


def test_canary_sends_about_its_percent():
    r = routes(canary={"target": "challenger", "percent": 20})
    picks = [r.pick(LOADED, None, ()) for _ in range(5000)]
    share = picks.count(2) / len(picks)
    assert 0.17 < share < 0.23
    assert set(picks) == {1, 2}


def test_canary_to_an_unloaded_target_falls_back_to_the_default():
    r = routes(canary={"target": "9", "percent": 100})
    assert {r.pick(LOADED, None, ()) for _ in range(50)} == {1}


def test_split_is_sticky_per_key_and_follows_the_weights():
    r = routes(split={"parameter": "user", "weights": {"champion": 70, "challenger": 30}})
    first = {f"user-{i}": r.pick(LOADED, {"user": f"user-{i}"}, ()) for i in range(2000)}
    again = {k: r.pick(LOADED, {"user": k}, ()) for k in first}
    assert first == again  # the same key always meets the same version
    share = list(first.values()).count(2) / len(first)
    assert 0.25 < share < 0.35
    assert r.pick(LOADED, None, ()) == 1  # no key: the default alias


def test_split_by_header():
    r = routes(split={"header": "X-User", "weights": {"1": 50, "3": 50}})
    seen = {r.pick(LOADED, None, [(b"x-user", f"u{i}".encode())]) for i in range(200)}
    assert seen == {1, 3}


def test_shadow_target_and_sampling():
    r = routes(shadow={"target": "challenger"})
    assert r.shadow_of(1, LOADED) == 2
    assert r.shadow_of(2, LOADED) is None  # never shadows onto itself
    sampled = routes(shadow={"target": "3", "percent": 25})
    hits = sum(sampled.shadow_of(1, LOADED) == 3 for _ in range(4000)) / 4000
    assert 0.21 < hits < 0.29
    assert routes(shadow={"target": "9"}).shadow_of(1, LOADED) is None


def test_referenced_versions_are_aliases_and_numeric_targets():
    r = routes(canary={"target": "3", "percent": 5}, shadow={"target": "challenger"})
    assert r.referenced() == {1, 2, 3}


def test_structs_round_trip_as_json():
    policy = RoutingPolicy(canary=Canary("2", 10), shadow=Shadow("3"))
    assert msgspec.json.decode(msgspec.json.encode(policy), type=RoutingPolicy) == policy
    assert RoutingPolicy(split=Split({"a": 50, "b": 50}, header="x")).split is not None
