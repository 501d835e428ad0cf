from pathlib import Path

from driftline.store.audit import AuditLog
from driftline.store.db import MIGRATIONS, Database


def test_audit_round_trip_and_survives_reopen(tmp_path: Path):
    path = tmp_path / "driftline.db"
    db = Database(path)
    log = AuditLog(db)
    log.record("load", "iris", version_after="1", sha256="ab" * 32)
    log.record("unload", "iris", version_before="1", reason="unload requested", actor="alice")
    log.record("load", "mlp", version_after="3")
    db.close()

    db = Database(path)  # migrations are idempotent
    events = AuditLog(db).events("iris")
    assert [e.action for e in events] == ["unload", "load"]
    assert events[0].actor == "alice"
    assert events[1].sha256 == "ab" * 32
    assert len(AuditLog(db).events()) == 3
    assert db.query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
    db.close()
