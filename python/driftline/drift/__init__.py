"""Drift detection: reference profiles, live windows, reports, alerts; statistics run in `_core`."""

from driftline.drift.alerts import AlertManager, DriftEvent
from driftline.drift.detect import compute_drift, evaluate
from driftline.drift.monitor import DriftMonitor
from driftline.drift.policy import DriftPolicy
from driftline.drift.profile import ReferenceProfile
from driftline.drift.report import DriftReport, FeatureDrift, Histogram
from driftline.drift.shared import SharedWindows
from driftline.drift.window import LiveWindow

__all__ = [
    "AlertManager",
    "DriftEvent",
    "DriftMonitor",
    "DriftPolicy",
    "DriftReport",
    "FeatureDrift",
    "Histogram",
    "LiveWindow",
    "ReferenceProfile",
    "SharedWindows",
    "compute_drift",
    "evaluate",
]
