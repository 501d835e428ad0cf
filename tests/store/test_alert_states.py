"""Alert changes announced once across the processes sharing a store (both stores): each process keeps its own
state, and the webhook of a change goes out from the first process that records it."""

from __future__ import annotations

from driftline.drift.alerts import Transitions
from driftline.store.alert_states import AlertStates
from driftline.store.db import open_database


def test_two_processes_seeing_the_same_changes_send_each_once(store_at):
    sent: list[bytes] = []
    processes = [
        Transitions("ok", sent.append, claim=AlertStates(open_database(store_at("a.db")), "drift").claim)
        for _ in range(2)
    ]
    key = ("iris", "2")
    for new in ("drift", "ok", "drift"):
        for process in processes:
            process.move(key, new, lambda previous, new=new: {"state": new, "previous": previous})
    assert [s.decode() for s in sent] == [
        '{"state":"drift","previous":"ok"}',
        '{"state":"ok","previous":"drift"}',
        '{"state":"drift","previous":"ok"}',
    ]
    assert all(p.state(key) == "drift" for p in processes)
    other = Transitions("ok", sent.append, claim=AlertStates(open_database(store_at("a.db")), "quality").claim)
    other.move(key, "drift", lambda previous: {"kind": "quality"})  # another kind of alert: its own state
    assert sent[-1] == b'{"kind":"quality"}'


def test_a_store_that_fails_sends_rather_than_loses_the_alert(store_at):
    db = open_database(store_at("a.db"))
    sent: list[bytes] = []
    transitions = Transitions("ok", sent.append, claim=AlertStates(db, "drift").claim)
    db.close()
    transitions.move("k", "drift", lambda previous: {"state": "drift"})
    assert sent == [b'{"state":"drift"}']
