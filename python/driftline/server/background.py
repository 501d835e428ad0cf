"""The server's periodic work: drift and quality checks that raise alerts unasked, following what other workers
stored, the retention of captured rows, and saving this process's traffic counts."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from driftline.capture.service import CaptureService
    from driftline.drift import DriftMonitor
    from driftline.drift.shared import SharedWindows
    from driftline.experiments.service import Experiments
    from driftline.feedback.alerts import QualityAlerts
    from driftline.lifecycle.service import Lifecycle
    from driftline.serving.table import ModelTable
    from driftline.serving.traffic import Traffic
    from driftline.store.db import Database

__all__ = [
    "check_all",
    "check_drift_forever",
    "check_experiments_forever",
    "check_quality",
    "check_quality_forever",
    "follow_store_forever",
    "retain_captures_forever",
    "save_drift_windows_forever",
    "save_traffic_forever",
]

_log = logging.getLogger("driftline.server")


async def check_all(table: ModelTable, monitor: DriftMonitor) -> int:
    """Evaluate every watched, loaded version once (alerts fire on state changes); returns how many were checked."""
    checked = 0
    for name, versions in table.loaded().items():
        for version in versions:
            if monitor.window(name, str(version)) is None:
                continue
            try:
                await asyncio.to_thread(monitor.check, name, str(version))
                checked += 1
            except KeyError:
                continue  # unloaded meanwhile
    return checked


async def _every(interval: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``work`` every ``interval`` s (never when it is <= 0); a failure is logged, and the next run goes on."""
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except Exception:  # noqa: BLE001 - a failed check must not stop the next ones
            _log.exception("periodic %s failed", what)


async def check_drift_forever(table: ModelTable, monitor: DriftMonitor, interval: float) -> None:
    """Evaluate watched versions periodically so drift state changes raise alerts without anyone asking."""
    await _every(interval, lambda: check_all(table, monitor), "drift check")


async def check_quality(table: ModelTable, alerts: QualityAlerts) -> int:
    """Measure every loaded version of each model with ``[quality]`` and judge its alert rules, on a thread (it
    reads captured segments); the figures of versions no longer loaded are dropped. Returns the models checked."""
    loaded = table.loaded()
    alerts.retain(loaded)
    checked = 0
    for name, versions in loaded.items():
        if not versions or next(iter(versions.values())).source.config.quality is None:
            continue
        try:
            await asyncio.to_thread(alerts.check, name, sorted(versions))
            checked += 1
        except DriftlineError as exc:  # unloaded meanwhile, or its rows cannot be read now
            _log.warning("quality check of %s skipped: %s", name, exc)
    return checked


async def check_quality_forever(table: ModelTable, alerts: QualityAlerts, interval: float) -> None:
    """Check quality periodically: the gauges stay current and quality rules fire and clear unasked."""
    await _every(interval, lambda: check_quality(table, alerts), "quality check")


async def check_experiments_forever(experiments: Experiments, interval: float) -> None:
    """Stop experiments past their ``ends_at``, and halt those whose guardrail is breached, periodically."""
    await _every(interval, experiments.check, "experiments check")


async def follow_store_forever(
    lifecycle: Lifecycle, db: Database, reload_keys: Callable[[], None], interval: float
) -> None:
    """Save this process's shadow totals, and take in what another worker process wrote to the store (aliases,
    routing, pins, keys) whenever the database changed."""
    if interval <= 0:
        return
    seen = db.data_version()
    while True:
        await asyncio.sleep(interval)
        try:
            lifecycle.persist_shadows()
            current = db.data_version()
            if current != seen:
                seen = current
                await lifecycle.follow_store()
                reload_keys()
        except Exception:  # noqa: BLE001 - a failed refresh must not stop the next ones
            _log.exception("refresh from the store failed")


async def retain_captures_forever(capture: CaptureService, table: ModelTable, interval: float) -> None:
    """Delete captured segments beyond each model's retention (age, bytes), on a thread, every ``interval`` s; a
    model's own ``[capture]`` is read from a loaded version of it (none loaded: the server's default)."""
    while True:
        try:
            own = {name: next(iter(v.values())).source.config.capture for name, v in table.loaded().items() if v}
            deleted = await asyncio.to_thread(capture.retain, own)
            if deleted:
                _log.info("capture retention deleted %d segment(s)", deleted)
        except Exception:  # noqa: BLE001 - a failed pass must not stop the next ones
            _log.exception("capture retention failed")
        await asyncio.sleep(interval)


async def save_traffic_forever(traffic: Traffic, interval: float) -> None:
    """Save this process's traffic counts every ``interval`` s, so reports in other workers see them; on a thread
    (a flush may run beside the loop's counting), so a busy database never stalls requests."""
    await _every(interval, lambda: asyncio.to_thread(traffic.flush), "traffic save")


async def save_drift_windows_forever(shared: SharedWindows, interval: float) -> None:
    """Save this process's drift windows every ``interval`` s, on a thread, so every process's reports merge them."""
    await _every(interval, lambda: asyncio.to_thread(shared.save), "drift window save")
