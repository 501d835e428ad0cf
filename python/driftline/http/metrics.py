"""``GET /metrics``: Prometheus text exposition of the collectors the composition root registered; with several
worker processes, every worker's summed (server/worker_metrics.py)."""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import generate_latest

from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time

__all__ = ["metrics"]

# Litestar appends "; charset=utf-8" to every text/ media type itself: naming it here too sent it twice, which
# strict media-type parsers (Go's, so Prometheus's) refuse.
_EXPOSITION = "text/plain; version=0.0.4"


@get("/metrics", summary="Prometheus metrics", tags=["operations"], media_type=_EXPOSITION)
async def metrics(services: ServicesDep) -> Response[bytes]:
    """Prometheus text exposition format 0.0.4; with several workers, the merge of them all."""
    workers = services.workers
    body = generate_latest(services.metrics) if workers is None else await workers.scrape()
    return Response(body, media_type=_EXPOSITION)
