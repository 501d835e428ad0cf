"""``GET /v1/ops/slo``: every model's SLO status from the history (docs/slo.md), for a viewer key or above."""

from __future__ import annotations

import asyncio

from litestar import Controller, get

from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import require_role_when_keyed
from driftline.http.openapi import KEYED_WHEN_CONFIGURED, errors
from driftline.ops.slo import SloStatus, slo_statuses

__all__ = ["OpsController"]


class OpsController(Controller):
    """The operations view's figures."""

    path = "/v1/ops"
    tags = ["operations"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012
    security = KEYED_WHEN_CONFIGURED

    @get("/slo", summary="Every model's SLO status", opt={"role": "viewer"}, responses=errors(401, 403))
    async def slo(self, services: ServicesDep) -> list[SloStatus]:
        """Per model, its availability and latency SLOs: the SLI and the error budget left over the period, the
        burn rates over 5m, 30m, 1h and 6h, and the alerts firing (``page``, ``ticket``). Every worker's counts as
        last saved (every 5 s); this process's are saved first."""
        await asyncio.to_thread(services.traffic.flush)
        return await asyncio.to_thread(
            slo_statuses, services.traffic.store.db, services.settings, services.table.repository
        )
