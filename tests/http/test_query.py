"""The query parameters' schemas say exactly what the routes take: a version pattern bounded as segments hold it."""

import random
import re

import pytest

from driftline.errors import BadRequest
from driftline.http.query import VERSION, at_most, version_number


@pytest.mark.parametrize("limit", [0, 7, 10, 99, 100, 305, 2**31 - 1])
def test_at_most_matches_exactly_the_numbers_up_to_the_limit(limit: int):
    pattern = re.compile(rf"\A{at_most(limit)}\Z")
    rng = random.Random(limit)
    numbers = [*range(2000), *(rng.randrange(10**11) for _ in range(5000)), limit - 1, limit, limit + 1]
    for n in (n for n in numbers if n >= 0):
        for text in (str(n), f"00{n}"):
            assert bool(pattern.match(text)) == (n <= limit), text


def test_the_version_schema_and_the_check_agree():
    pattern = re.compile(VERSION["pattern"])
    for text in ("1", "0002", "2147483647", "2147483648", "4453946892", "x", "-1", ""):
        accepted = pattern.match(text) is not None
        if accepted:
            assert version_number(text) == int(text)
        else:
            with pytest.raises(BadRequest, match="version"):
                version_number(text)
