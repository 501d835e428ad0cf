"""The PostgreSQL store's own behaviour on a real server: what other processes follow, lost connections, the
advisory lock that elects one registry syncer, and the SQL it is given translated."""

from __future__ import annotations

import pytest
from tests.postgres import end_sessions

from driftline.errors import ConfigError, StoreUnavailable
from driftline.store.audit import AuditAction, AuditLog
from driftline.store.db import open_database
from driftline.store.deployments import DeploymentStore
from driftline.store.keys import KeyStore
from driftline.store.postgres import redacted
from driftline.store.postgres_lock import AdvisoryLock
from driftline.store.postgres_sql import statement


def test_a_change_by_another_replica_moves_the_data_version(postgres):
    url = postgres.new_database()
    mine, theirs = open_database(url), open_database(url)
    seen = mine.data_version()
    AuditLog(theirs).record(AuditAction.ALIAS_SET, "m", actor="t")
    assert mine.data_version() == seen  # the audit log is not followed: nothing to reload
    DeploymentStore(theirs).move_alias("m", "champion", 2, 1)
    assert mine.data_version() != seen
    assert [(a.alias, a.version, a.previous) for a in DeploymentStore(mine).aliases("m")] == [("champion", 2, 1)]
    mine.close()
    theirs.close()


def test_every_followed_change_moves_the_data_version(postgres):
    """Keys, routes and pins made through one replica are what another's refresh takes in: each moves the counter."""
    url = postgres.new_database()
    mine, theirs = open_database(url), open_database(url)
    changes = [
        lambda: KeyStore(theirs).create_key("ops", "admin", actor="t"),
        lambda: KeyStore(theirs).revoke_key("ops"),
        lambda: DeploymentStore(theirs).set_routing("m", '{"canary": null}'),
        lambda: DeploymentStore(theirs).pin("m", 3),
    ]
    for change in changes:
        seen = mine.data_version()
        change()
        assert mine.data_version() != seen
    mine.close()
    theirs.close()


def test_sums_are_ints_and_inserts_return_their_ids(postgres):
    db = open_database(postgres.new_database())
    audit = AuditLog(db)
    first = audit.record(AuditAction.ALIAS_SET, "m", actor="a")
    second = audit.record(AuditAction.ALIAS_SET, "m", actor="a")
    assert second == first + 1
    total = db.query("SELECT SUM(id) AS s FROM audit_log")[0]["s"]
    assert total == first + second
    assert isinstance(total, int)
    db.close()


def test_a_lost_connection_is_a_503_then_the_next_statement_reconnects(postgres):
    url = postgres.new_database()
    db = open_database(url)
    assert DeploymentStore(db).aliases() == []
    assert end_sessions(url) >= 1
    with pytest.raises(StoreUnavailable, match="database postgresql://"):
        DeploymentStore(db).aliases()
    DeploymentStore(db).move_alias("m", "champion", 1, None)  # connected again
    assert len(DeploymentStore(db).aliases()) == 1
    db.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        DeploymentStore(db).aliases()


def test_an_unreachable_server_is_one_config_error_without_the_password(postgres):
    with pytest.raises(ConfigError) as caught:
        open_database("postgresql://driftline:s3cret@127.0.0.1:1/nowhere")
    message = str(caught.value)
    assert "s3cret" not in message
    assert "***" in message
    assert "\n" not in message
    assert redacted("postgresql://u:p@h:5/d") == "postgresql://u:***@h:5/d"


def test_one_holder_of_the_advisory_lock_and_a_dead_holder_is_replaced(postgres):
    url = postgres.new_database()
    first, second = AdvisoryLock(url, "registry-sync:x"), AdvisoryLock(url, "registry-sync:x")
    other = AdvisoryLock(url, "registry-sync:y")
    assert first.acquire()
    assert first.held
    assert not second.acquire()
    assert not second.held
    assert other.acquire()  # another name is another lock
    assert first.acquire()  # asked again while held: still held
    end_sessions(url)  # the holder's session ends, as at kill -9: the server lets the lock go
    assert second.acquire()
    assert not first.acquire()
    assert not first.held
    second.release()
    assert first.acquire()
    for lock in (first, second, other):
        lock.release()


@pytest.mark.parametrize(
    ("sqlite", "postgresql"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT x FROM t WHERE y LIKE '5%'", "SELECT x FROM t WHERE y LIKE '5%%'"),
        (
            "UPDATE t SET v = MAX(t.v, excluded.v)",
            "UPDATE t SET v = GREATEST(t.v, excluded.v)",
        ),
        (
            "SELECT SUM(j.value) FROM traffic, json_each(traffic.latency) AS j",
            "SELECT SUM(CAST(j.value AS BIGINT)) FROM traffic, jsonb_each_text(CAST(traffic.latency AS jsonb)) AS j",
        ),
        ("INSERT INTO audit_log (a) VALUES (?)", "INSERT INTO audit_log (a) VALUES (%s) RETURNING id"),
        ("INSERT INTO pins (a) VALUES (?)", "INSERT INTO pins (a) VALUES (%s)"),
    ],
)
def test_statements_are_translated(sqlite: str, postgresql: str):
    assert statement(sqlite)[0] == postgresql
