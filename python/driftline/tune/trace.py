"""Real traffic to replay: the arrival times and sizes of a model's captured requests (``--load trace``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftline.capture.reader import CaptureReader
from driftline.errors import ConfigError
from driftline.store.captures import CaptureIndex
from driftline.store.db import open_database

if TYPE_CHECKING:
    import numpy.typing as npt

    from driftline.config import ServerSettings

__all__ = ["Trace", "load_trace"]

# Rows the server captured for no client request of its own: shadow copies and bulk jobs' rows.
_NOT_TRAFFIC = ("shadow", "bulk")


@dataclass(frozen=True, slots=True)
class Trace:
    """Captured requests in arrival order: seconds from the first one (float64) and rows per request."""

    arrivals: npt.NDArray[np.float64]
    rows: npt.NDArray[np.int64]


def load_trace(settings: ServerSettings, model: str, version: int | None, limit: int = 100_000) -> Trace:
    """The latest ``limit`` captured requests of the model (one version's, or every version's), from the capture
    index in the server's store, reading only the key columns.

    A request is one ``request_id``: its arrival is its rows' ``ts``, its size their count. Captured with a
    ``sample_rate`` below 1, the trace holds that share of the requests (replay it faster to make up for it).

    Raises:
        ConfigError: no captured requests.
    """
    db = open_database(settings.database)
    try:
        reader = CaptureReader(Path(settings.capture.directory), CaptureIndex(db))
        segments = reader.segments(model, version)
        tables: list[pa.Table] = []
        seen = 0
        # Newest segment first, until enough requests are read: a long capture history is not read whole.
        for segment in reversed(segments):
            tables.extend(reader.columns([segment], ["request_id", "ts", "arm"]))
            seen += segment.rows
            if seen >= limit * 2:
                break
    finally:
        db.close()
    table = pa.concat_tables(tables) if tables else None
    if table is not None:
        table = table.filter(pc.invert(pc.is_in(table["arm"], value_set=pa.array(_NOT_TRAFFIC))))
    if table is None or table.num_rows == 0:
        raise ConfigError(
            f"--load trace: model {model!r} has no captured requests (capture is off, or nothing was served yet)"
        )
    grouped = table.group_by("request_id").aggregate([("ts", "min"), ("ts", "count")])
    ts = grouped["ts_min"].cast(pa.int64()).to_numpy()
    counts = grouped["ts_count"].to_numpy().astype(np.int64)
    order = np.argsort(ts, kind="stable")[-limit:]
    ts, counts = ts[order], counts[order]
    return Trace(((ts - ts[0]) / 1e6).astype(np.float64), counts)
