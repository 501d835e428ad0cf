"""SLO definitions from the model's and the server's ``[slo]``, and the burn-rate maths on real history rows
written through the traffic store (a real SQLite file): windows, SLI, budget, the page and ticket alerts."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from driftline.config import ServerSettings, SloSettings, load_settings
from driftline.errors import ConfigError
from driftline.ops.slo import ALERTS, burn_rate, definitions, slo_statuses
from driftline.repository import Repository
from driftline.store.db import open_database
from driftline.store.traffic import VERSION_ROW, TrafficRow, TrafficStore, minute_of

NOW = datetime.now(UTC)
M = minute_of(NOW.timestamp())


def _slo(root: Path, model: str, text: str) -> None:
    (root / model / "config.toml").write_text(
        (root / model / "config.toml").read_text() + "\n[slo]\n" + textwrap.dedent(text)
    )


def _settings(root: Path, **slo: object) -> ServerSettings:
    return ServerSettings(repository=str(root), slo=SloSettings(**slo))  # type: ignore[arg-type]


def test_definitions_model_over_server(repo: Path) -> None:
    _slo(repo, "iris", "availability = 0.99\nlatency_threshold_ms = 20\nperiod_days = 7\n")
    slos = definitions(_settings(repo, latency_objective=0.95), Repository(repo))
    got = [(s.model, s.kind, s.objective, s.threshold_s, s.period_s) for s in slos]
    assert got == [
        ("iris", "availability", 0.99, None, 7 * 86400.0),
        ("iris", "latency", 0.95, 0.02, 7 * 86400.0),
        ("mlp", "availability", 0.999, None, 28 * 86400.0),
        ("mlp", "latency", 0.95, 0.05, 28 * 86400.0),
    ]
    _slo(repo, "mlp", "enabled = false\n")
    assert {s.model for s in definitions(_settings(repo), Repository(repo))} == {"iris"}
    assert definitions(_settings(repo, enabled=False), Repository(repo)) == []


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("availability = 1.0", "slo.availability"),
        ("latency_objective = 0", "slo.latency_objective"),
        ("latency_threshold_ms = -5", "slo.latency_threshold_ms"),
        ("period_days = 90", "slo.period_days"),
        ("availabilty = 0.9", "availabilty"),
    ],
)
def test_invalid_model_slo_is_a_config_error_naming_the_key(repo: Path, text: str, key: str) -> None:
    _slo(repo, "iris", text + "\n")
    with pytest.raises(ConfigError, match=key):
        Repository(repo).model("iris")
    with pytest.raises(ConfigError, match=key):
        definitions(_settings(repo), Repository(repo))
    assert {s.model for s in definitions(_settings(repo), Repository(repo), skip_broken=True)} == {"mlp"}


def test_invalid_server_slo_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text("[slo]\navailability = 1.5\n")
    with pytest.raises(ConfigError, match=r"slo\.availability"):
        load_settings(path, None, {})


def _row(minute: int, requests: int, statuses: dict[int, int] | None = None, slow: int = 0, model: str = "iris"):
    errors = sum((statuses or {}).values())
    return TrafficRow(model, 1, 0, M - minute, requests, errors, {}, statuses, slow)


def test_burn_rates_sli_budget_and_alerts_from_history(repo: Path, tmp_path: Path, store_at) -> None:
    db = open_database(store_at("slo.db"))
    store = TrafficStore(db)
    store.add(
        "a",
        [
            _row(2, 600, {500: 10, 429: 3}, slow=40),
            _row(40, 1000),
            _row(200, 2000, {503: 10}),
            _row(2000, 6000),
            TrafficRow("iris", 1, VERSION_ROW, M - 2, 0, 0, {}, None, 0, 5000, 80, 9),  # no requests of its own
        ],
    )
    store.add("b", [_row(2, 400, {504: 5, 500: 5})])  # another process, the same minute: summed
    store.add("a", [_row(1, 100, {500: 50}, model="mlp")])
    statuses = {(s.model, s.kind): s for s in slo_statuses(db, _settings(repo), Repository(repo), NOW)}
    a = statuses["iris", "availability"]
    # 5m and 30m: 20 5xx of 1000 (the 429s are not the server's fault) = 0.02 over the 0.001 budget.
    assert a.burn_rates["5m"] == pytest.approx(20.0)
    assert a.burn_rates["30m"] == pytest.approx(20.0)
    assert a.burn_rates["1h"] == pytest.approx(10.0)  # 20 of 2000
    assert a.burn_rates["6h"] == pytest.approx(7.5)  # 30 of 4000
    assert a.sli == pytest.approx(1 - 30 / 10000)
    assert a.budget_left == pytest.approx(1 - 3.0)  # overspent three times over
    assert a.alerts == ["ticket"]  # 6h 7.5 and 30m 20 > 6; 1h 10 is not > 14.4
    assert (a.objective, a.threshold_s, a.period_s) == (0.999, None, 28 * 86400.0)
    lat = statuses["iris", "latency"]
    assert lat.burn_rates["5m"] == pytest.approx(40 / 1000 / 0.01)
    assert lat.burn_rates["6h"] == pytest.approx(40 / 4000 / 0.01)
    assert lat.sli == pytest.approx(1 - 40 / 10000)
    assert lat.alerts == []
    assert lat.threshold_s == 0.05
    m = statuses["mlp", "availability"]
    assert m.burn_rates["5m"] == pytest.approx(500.0)
    assert m.alerts == ["page", "ticket"]
    # A quiet model: no ratio to speak of, rather than a made-up zero.
    assert statuses["mlp", "latency"].burn_rates["5m"] == 0.0
    db.close()


def test_no_traffic_is_none(repo: Path, tmp_path: Path, store_at) -> None:
    db = open_database(store_at("empty.db"))
    for s in slo_statuses(db, _settings(repo), Repository(repo), NOW):
        assert s.sli is None
        assert s.budget_left is None
        assert s.alerts == []
        assert s.burn_rates == {"5m": None, "30m": None, "1h": None, "6h": None}
    db.close()


def test_alert_factors_by_period() -> None:
    page, ticket = ALERTS
    day = 86400.0
    assert (page.long, page.short, ticket.long, ticket.short) == ("1h", "5m", "6h", "30m")
    assert page.threshold(28 * day) == 14.4
    assert page.threshold(30 * day) == 14.4
    assert ticket.threshold(28 * day) == 6.0
    # Other periods keep the budget shares: 2% in 1 h, 5% in 6 h.
    assert page.threshold(7 * day) == pytest.approx(14.4 * 7 / 30)
    assert ticket.threshold(7 * day) == pytest.approx(6.0 * 7 / 30)
    assert burn_rate(1, 100, 0.99) == pytest.approx(1.0)
    assert burn_rate(0, 0, 0.99) is None
