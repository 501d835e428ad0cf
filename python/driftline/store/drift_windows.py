"""Each process's live drift windows per (model, version): saved whole, read back by every process for a report.

The state is opaque here (drift/shared.py writes and reads it); this module only keeps one row per process and
version, newest write wins, and drops rows nobody saved for a while so the table stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.store.db import Database

__all__ = ["DriftWindowStore", "SavedWindow"]


@dataclass(frozen=True, slots=True)
class SavedWindow:
    """One process's saved windows of one version.

    Attributes:
        process: The process's id (the one its traffic counts are saved under).
        model: Model name.
        version: Model version.
        state: The encoded windows (drift/shared.py).
        rows: Rows in them (for listing without decoding).
        saved_us: When it was saved, µs since the UNIX epoch (UTC).
    """

    process: str
    model: str
    version: int
    state: bytes
    rows: int
    saved_us: int


class DriftWindowStore:
    """The ``drift_windows`` table (migration 12)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, windows: Sequence[SavedWindow]) -> None:
        """Store some processes' windows, replacing what each saved before for the same version (one transaction).

        Args:
            windows: The rows to write.
        """
        if not windows:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO drift_windows (process, model, version, state, rows, saved_us) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (process, model, version) DO UPDATE SET state = excluded.state,"
                " rows = excluded.rows, saved_us = excluded.saved_us",
                [(w.process, w.model, w.version, w.state, w.rows, w.saved_us) for w in windows],
            )

    def read(self, model: str, version: int, fresh_after_us: int) -> list[SavedWindow]:
        """Every process's windows of a version saved after ``fresh_after_us``, oldest process id first.

        Args:
            model: Model name.
            version: Model version.
            fresh_after_us: Rows saved at or before this instant (µs UTC) are left out.

        Returns:
            The rows, ordered by process id (a stable merge order).
        """
        rows = self.db.query(
            "SELECT process, model, version, state, rows, saved_us FROM drift_windows"
            " WHERE model = ? AND version = ? AND saved_us > ? ORDER BY process",
            (model, version, fresh_after_us),
        )
        return [
            SavedWindow(
                r["process"], r["model"], int(r["version"]), bytes(r["state"]), int(r["rows"]), int(r["saved_us"])
            )
            for r in rows
        ]

    def touch(self, process: str, versions: Sequence[tuple[str, int]], saved_us: int) -> None:
        """Mark a process's unchanged windows as saved now (no state rewritten), so they stay fresh.

        Args:
            process: The process id.
            versions: (model, version) pairs it still watches.
            saved_us: Now, µs UTC.
        """
        if not versions:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE drift_windows SET saved_us = ? WHERE process = ? AND model = ? AND version = ?",
                [(saved_us, process, model, version) for model, version in versions],
            )

    def delete_before(self, saved_us: int) -> int:
        """Drop every row saved before ``saved_us`` (µs UTC): processes gone for longer than anyone reads back.

        Args:
            saved_us: The cut-off.

        Returns:
            How many rows went.
        """
        with self.db.transaction() as conn:
            return int(conn.execute("DELETE FROM drift_windows WHERE saved_us < ?", (saved_us,)).rowcount)
