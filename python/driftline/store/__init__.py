"""SQLite persistence: the database file and its migrations, and the audit log."""

from driftline.store.audit import AuditEvent, AuditLog
from driftline.store.db import Database
from driftline.store.jobs import JobRecord, JobStore

__all__ = ["AuditEvent", "AuditLog", "Database", "JobRecord", "JobStore"]
