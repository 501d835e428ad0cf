"""SQLite persistence: the database file and its migrations, and the audit log."""

from driftline.jobs.store import JobRecord, JobStore
from driftline.store.audit import AuditEvent, AuditLog
from driftline.store.db import Database

__all__ = ["AuditEvent", "AuditLog", "Database", "JobRecord", "JobStore"]
