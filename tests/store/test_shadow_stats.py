"""Shadow comparison totals: each process saves its own running counters (absolute values), reads sum them; the
serving side hands over what changed since its last save, and the caller stores it."""

from pathlib import Path

import msgspec

from driftline.serving.shadow import ShadowComparisons
from driftline.store.db import open_database
from driftline.store.shadow_stats import ShadowPair, ShadowStatsStore


def test_totals_sum_processes_and_a_repeated_save_counts_once(tmp_path: Path, store_at):
    db = open_database(store_at("s.db"))
    store = ShadowStatsStore(db)
    a = ShadowPair("iris", 2, 1, requests=3, compared_rows=6, agreeing_rows=5, last_error="boom")
    b = ShadowPair("iris", 2, 1, requests=4, compared_rows=8, agreeing_rows=8)
    store.save("process-a", [a])
    store.save("process-a", [a])
    store.save("process-b", [b])
    store.save("process-b", [])
    store.save("process-c", [ShadowPair("mlp", 1, 2, requests=1)])
    (total,) = store.totals("iris")
    assert (total.requests, total.compared_rows, total.agreeing_rows, total.last_error) == (7, 14, 13, "boom")
    assert [(p.model, p.primary, p.shadow) for p in store.totals()] == [("iris", 2, 1), ("mlp", 1, 2)]
    db.close()


def test_changed_hands_over_each_change_once_as_a_snapshot():
    shadows = ShadowComparisons()
    assert shadows.changed() == []
    pair = shadows.pair("iris", 2, 1)
    pair.requests = 2
    shadows.pair("mlp", 1, 2)
    changed = shadows.changed()
    assert [(p.model, p.requests) for p in changed] == [("iris", 2), ("mlp", 0)]
    assert shadows.changed() == []  # handed over: nothing changed since
    pair.requests = 5  # the live counter goes on; the snapshot handed over does not
    assert changed[0].requests == 2
    shadows.pair("iris", 2, 1)
    assert [p.requests for p in shadows.changed()] == [5]


def test_summary_fields_are_the_admin_apis_in_order():
    pair = ShadowPair("m", 1, 2, requests=2, shadow_errors=2)
    assert msgspec.json.encode(pair.summary()) == (
        b'{"model":"m","primary_version":"1","shadow_version":"2","requests":2,"compared_rows":0,'
        b'"agreement":null,"mean_abs_diff":null,"primary_latency_ms":0.0,"shadow_latency_ms":null,'
        b'"shadow_errors":2,"dropped":0,"last_error":null}'
    )
