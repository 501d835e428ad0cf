"""The alert states announced so far, shared by every process: one webhook per change, not one per process.

Every worker and replica judges the same rules on the same shared rows (quality) and so sees the same change; each
asks :meth:`AlertStates.claim` before it sends, and only the first to record the new state sends the event. The
others change their own state (gauges, history) silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = ["AlertStates"]


class AlertStates:
    """Reads and writes the alert_states table (migration 14 in :mod:`driftline.store.migrations`)."""

    def __init__(self, db: Database, kind: str) -> None:
        """The states of one kind of alert ("quality", "drift")."""
        self.db = db
        self.kind = kind

    def claim(self, key: str, state: str) -> bool:
        """Record that ``key`` is in ``state`` now; True when no process had announced that state yet (this one
        sends the event), False when one had (it was sent)."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT state FROM alert_states WHERE kind = ? AND key = ?", (self.kind, key)).fetchone()
            if row is not None and row[0] == state:
                return False
            conn.execute(
                "INSERT INTO alert_states (kind, key, state) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET"
                " state = excluded.state, changed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (self.kind, key, state),
            )
            return True
