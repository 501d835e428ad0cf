"""SQLite persistence: the database file and its migrations, and the audit log."""

from driftline.store.audit import AuditEvent, AuditLog
from driftline.store.db import Database

__all__ = ["AuditEvent", "AuditLog", "Database"]
