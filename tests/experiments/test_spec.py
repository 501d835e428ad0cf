"""The experiment spec refuses, naming the field, whatever it can tell wrong on its own (the server's checks, on
versions and traffic, are the service's: tests/experiments/test_service.py)."""

from __future__ import annotations

import msgspec
import pytest

from driftline.experiments.spec import MAX_ARMS, MAX_METRICS, MAX_RULES, ExperimentSpec

ARMS = [{"name": "champion", "target": "champion"}, {"name": "challenger", "target": "2"}]
CONVERSION = {"name": "conversion", "kind": "kpi", "direction": "increase"}
ERRORS = {"name": "errors", "kind": "error_rate", "direction": "decrease"}


def _spec(**change: object) -> dict:
    base: dict = {"name": "e", "arms": ARMS, "design": {"canary": 30}, "metrics": [CONVERSION, ERRORS]}
    return {**base, "primary": "conversion", **change}


def _decode(body: dict) -> ExperimentSpec:
    return msgspec.json.decode(msgspec.json.encode(body), type=ExperimentSpec)


def test_a_good_spec_decodes_with_its_defaults():
    spec = _decode(_spec(guardrails=["errors"]))
    assert (spec.control.name, spec.design.kind, spec.min_sample, spec.confidence) == ("champion", "canary", 100, 0.95)
    assert spec.metric("errors").direction == "decrease"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"arms": ARMS[:1]}, "arms must list 2.."),
        ({"arms": [ARMS[0]] * 2}, "arms[].name must be unique"),
        ({"arms": [*ARMS, {"name": "c", "target": "3"}]}, "canary design compares two arms"),
        ({"arms": [{"name": f"a{i}", "target": str(i)} for i in range(MAX_ARMS + 1)]}, "arms must list"),
        ({"arms": [ARMS[0], {"name": "bad name", "target": "2"}]}, "arms[].name"),
        ({"design": {"canary": 30, "shadow": 100}}, "exactly one of"),
        ({"design": {"canary": 0}}, "design.canary"),
        ({"design": {"split": {"champion": 50, "challenger": 50}}}, "'parameter' or 'header'"),
        ({"design": {"split": {"champion": 60, "challenger": 50}, "header": "x-user"}}, "adding up to 100"),
        ({"design": {"split": {"champion": 50, "other": 50}, "header": "x-user"}}, "weigh every arm"),
        ({"metrics": []}, "metrics must list"),
        ({"metrics": [CONVERSION] * (MAX_METRICS + 1)}, "metrics must list"),
        ({"metrics": [CONVERSION, CONVERSION]}, "metrics[].name must be unique"),
        ({"metrics": [{"name": "q", "kind": "quality", "direction": "increase"}], "primary": "q"}, "quality"),
        ({"metrics": [{**ERRORS, "kpi": "x"}, CONVERSION]}, "kpi belongs"),
        ({"metrics": [{**CONVERSION, "direction": "up"}]}, "direction"),
        ({"primary": "revenue"}, "primary names 'revenue'"),
        ({"guardrails": ["conversion"]}, "cannot also be a guardrail"),
        ({"guardrails": ["errors", "errors"]}, "guardrails must name each metric once"),
        ({"rules": [{"metric": "revenue", "require": "better"}]}, "rules[].metric names 'revenue'"),
        ({"rules": [{"metric": "conversion", "require": "min_sample"}]}, "min_sample needs n >= 1"),
        ({"rules": [{"metric": "conversion", "require": "not_worse", "margin": -1}]}, "margin must be >= 0"),
        ({"rules": [{"metric": "conversion", "require": "better"}] * (MAX_RULES + 1)}, "at most 50 rules"),
        ({"confidence": 1.0}, "confidence must be within"),
        ({"min_sample": -1}, "min_sample must be >= 0"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(change, words):
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(_spec(**change))
    assert words in str(refused.value), refused.value
