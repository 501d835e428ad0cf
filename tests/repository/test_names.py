"""One naming rule for aliases and models, the same wherever a name is taken."""

from __future__ import annotations

import pytest

from driftline.errors import BadRequest
from driftline.jobs import parse_model_ref
from driftline.repository.names import ALIAS_PATTERN, MODEL_NAME, check_alias_name, is_alias_name

GOOD = ["champion", "champion_v2.1-b", "2024q1", "1a", "_x", ".hidden", "a" * 64, "v-1"]
BAD = ["", "12", "has space", "-x", "a" * 65, "é", "a/b", "a@b", "a:b", "champion\n"]


@pytest.mark.parametrize("alias", BAD)
def test_bad_alias_names_are_refused_naming_the_alias(alias):
    with pytest.raises(ValueError, match="alias"):
        check_alias_name(alias)


@pytest.mark.parametrize("alias", GOOD)
def test_the_cli_takes_every_alias_the_server_takes(alias):
    """`driftline score iris@2024q1` was refused although the server accepts alias 2024q1."""
    check_alias_name(alias)
    assert parse_model_ref(f"iris@{alias}") == ("iris", alias)


@pytest.mark.parametrize("alias", [a for a in BAD if a])
def test_the_cli_refuses_every_alias_the_server_refuses(alias):
    assert not is_alias_name(alias)
    with pytest.raises(BadRequest):
        parse_model_ref(f"iris@{alias}")


def test_the_openapi_pattern_is_the_rule():
    """The schema carries ``^ALIAS_PATTERN$`` (ECMA: ``$`` is the end); in Python that is a full match."""
    import re

    assert all(re.fullmatch(ALIAS_PATTERN, a) for a in GOOD)
    assert not any(re.fullmatch(ALIAS_PATTERN, a) for a in BAD if len(a) <= 64)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("iris", True),
        ("iris_torch.v2-b", True),
        ("9x", True),
        ("_x", False),
        ("a" * 129, False),
        ("a b", False),
        ("iris\n", False),
    ],
)
def test_model_names(name, ok):
    assert bool(MODEL_NAME.match(name)) is ok
    if ok:
        assert parse_model_ref(name) == (name, None)
