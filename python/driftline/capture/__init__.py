"""Prediction capture: captured rows to Parquet segments through a bounded queue,
read back by the store's index, retention and per-entity erasure."""

from driftline.capture.reader import CaptureReader
from driftline.capture.retention import enforce_retention, erase_entity
from driftline.capture.rows import CaptureBatch, keep_tensors
from driftline.capture.sampling import should_capture
from driftline.capture.service import CapturePlan, CaptureService
from driftline.capture.writer import CaptureFigures, CaptureWriter

__all__ = [
    "CaptureBatch",
    "CaptureFigures",
    "CapturePlan",
    "CaptureReader",
    "CaptureService",
    "CaptureWriter",
    "enforce_retention",
    "erase_entity",
    "keep_tensors",
    "should_capture",
]
