"""The ``[logs]`` settings: the line format and what the access log keeps (see docs/logging.md)."""

from __future__ import annotations

import msgspec

__all__ = ["LOG_FORMATS", "LogSettings"]

LOG_FORMATS = ("text", "json")


class LogSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How log lines look and which requests get an access line."""

    # "text": one human line per record (as always); "json": one JSON object per line.
    format: str = "text"
    # Share of successful (< 400) inference answers that get an access line, decided per request at random.
    access_sample: float = 0.01
    # Every error answer (>= 400) gets an access line, at most this many per second per worker process; the rest
    # are counted and the count is logged once the second is over (a flood of bad requests cannot flood the log).
    error_lines_per_s: int = 100
    # An access line for every request to the other routes (metadata, admin, /metrics, ...), which are not hot.
    other_routes: bool = True
    # Seed of the inference sampler (None: fresh randomness); each worker process seeds its own with it.
    sample_seed: int | None = None

    def __post_init__(self) -> None:
        if self.format not in LOG_FORMATS:
            raise ValueError(f"logs.format must be one of {', '.join(LOG_FORMATS)}, got {self.format!r}")
        if not 0.0 <= self.access_sample <= 1.0:  # also refuses NaN
            raise ValueError(f"logs.access_sample must be within 0..1, got {self.access_sample}")
        if self.error_lines_per_s < 0:
            raise ValueError(f"logs.error_lines_per_s must be >= 0, got {self.error_lines_per_s}")
