"""The audit view over a real store: every filter narrows, pages are bounded and page back without a gap or a
repeat, and bad parameters are 400s naming the parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from driftline.dashboard.audit import PAGE_SIZE, parse_filter, render_audit
from driftline.errors import BadRequest
from driftline.store.audit import AuditAction, AuditLog
from driftline.store.db import open_database

ROW_ID = re.compile(r"<tr><td class='num'>(\d+)</td>")


@pytest.fixture
def log(tmp_path, store_at):
    db = open_database(store_at("d.db"))
    audit = AuditLog(db)
    for i in range(120):
        action = AuditAction.LOAD if i % 3 else AuditAction.KEY_CREATED
        audit.record(action, "iris" if i % 2 else "mlp", actor=f"key:k{i % 4}", version_after=str(i))
    # One event of a known time, for the range filters.
    db.execute("UPDATE audit_log SET at = '2020-01-01T12:00:00.000Z' WHERE id = 1")
    yield audit
    db.close()


def _ids(parts: list[str]) -> list[int]:
    return [int(i) for i in ROW_ID.findall("".join(parts))]


def test_pages_are_bounded_and_page_back_without_gaps(log):
    first = render_audit(log, parse_filter({}))
    ids = _ids(first)
    assert ids == list(range(120, 120 - PAGE_SIZE, -1))
    seen = list(ids)
    page = first
    while (older := re.search(r"id='older' href='/ui/audit\?([^']+)'", "".join(page))) is not None:
        params = dict(p.split("=") for p in older.group(1).split("&amp;"))
        page = render_audit(log, parse_filter(params))
        seen += _ids(page)
    assert seen == list(range(120, 0, -1))


def test_filters_narrow_to_matching_events(log):
    ids = _ids(render_audit(log, parse_filter({"action": "key_created", "model": "mlp"})))
    assert ids
    assert all((i - 1) % 3 == 0 and (i - 1) % 2 == 0 for i in ids)
    ids = _ids(render_audit(log, parse_filter({"actor": "key:k1"})))
    assert ids
    assert all((i - 1) % 4 == 1 for i in ids)
    ids = _ids(render_audit(log, parse_filter({"until": "2021-01-01T00:00Z"})))
    assert ids == [1]
    ids = _ids(render_audit(log, parse_filter({"since": "2020-01-01T12:00", "until": "2020-01-01T12:00:01Z"})))
    assert ids == [1]  # a time without a zone is UTC, as the form says
    assert 1 not in _ids(render_audit(log, parse_filter({"since": datetime.now(UTC).strftime("%Y-%m-%d")})))
    assert "no event matches" in "".join(render_audit(log, parse_filter({"actor": "nobody"})))


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"action": "drop_tables"}, "action"),
        ({"since": "last tuesday"}, "since"),
        ({"until": "2020-13-01"}, "until"),
        ({"before": "0"}, "before"),
        ({"before": "x"}, "before"),
        ({"before": str(2**64)}, "before"),
        ({"before": "²"}, "before"),  # a digit to str.isdigit, not to int()
        ({"since": "0001-01-01T00:00+01:00"}, "since"),  # out of range once in UTC
        ({"until": "9999-12-31T23:59-01:00"}, "until"),
        ({"actor": "a" * 201}, "actor"),
        ({"model": "m" * 500}, "model"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, name):
    with pytest.raises(BadRequest, match=f"'{name}'"):
        parse_filter(params)


def test_what_the_log_holds_is_escaped(log):
    log.record(AuditAction.ALIAS_SET, "<script>x</script>", actor="key:<b>", reason="<img src=x>")
    html = "".join(render_audit(log, parse_filter({})))
    assert "<script>" not in html
    assert "<img" not in html
    assert "key:<b>" not in html
    assert "&lt;script&gt;" in html
