from pathlib import Path

from driftline.store.audit import AuditLog
from driftline.store.db import open_database
from driftline.store.migrations import MIGRATIONS


def test_audit_round_trip_and_survives_reopen(tmp_path: Path, store_at):
    path = store_at("driftline.db")
    db = open_database(path)
    log = AuditLog(db)
    log.record("load", "iris", version_after="1", sha256="ab" * 32)
    log.record("unload", "iris", version_before="1", reason="unload requested", actor="alice")
    log.record("load", "mlp", version_after="3")
    db.close()

    db = open_database(path)  # migrations are idempotent
    events = AuditLog(db).events("iris")
    assert [e.action for e in events] == ["unload", "load"]
    assert events[0].actor == "alice"
    assert events[1].sha256 == "ab" * 32
    assert len(AuditLog(db).events()) == 3
    assert db.schema_version() == len(MIGRATIONS)
    db.close()
