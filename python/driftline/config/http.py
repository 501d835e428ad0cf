"""``[http]``: how the HTTP front end listens and what it accepts (checked with the rest in
:class:`driftline.config.ServerSettings`)."""

from __future__ import annotations

import msgspec

__all__ = ["HttpSettings"]


class HttpSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the HTTP front end listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    server: str = "uvicorn"
    max_request_bytes: int = 64 * 1024 * 1024
    # Seconds a request may wait for its result before 504; each model's queue timeout applies first.
    request_timeout_s: float = 60.0
    # Connection limits, per worker process (uvicorn; see the README for what granian takes of them).
    # An idle keep-alive connection is closed this many seconds after its last response.
    keep_alive_s: float = 5.0
    # A request's headers must be in within this many seconds of its first byte (else 408 and close); a new
    # connection that sends nothing is closed after it too (slowloris and idle sockets hold no descriptor for long).
    header_timeout_s: float = 10.0
    # A request's whole body must be in within this many seconds of its first read (else 408 and close).
    body_timeout_s: float = 60.0
    # Open connections; one more is answered 503 at once and closed. Kept below the open-file limit (RLIMIT_NOFILE).
    max_connections: int = 1000
    # Seconds between SIGTERM (or SIGINT) and the start of the shutdown, while /v2/health/ready answers 503 and
    # requests are still served, so a load balancer's health check takes this server out first (uvicorn only;
    # operations.md, "Draining behind a load balancer"). 0: shut down at once, as a developer's Ctrl-C wants.
    drain_delay_s: float = 0.0
    # The address others reach this server at, e.g. "https://driftline.example.com" (behind a proxy, or when
    # host is 0.0.0.0): the base of the export URLs in alert events. "" (not None: every [http] key is handed to
    # worker processes as a DRIFTLINE_HTTP__* string): http://{host}:{port}.
    public_url: str = ""
    # Set by `driftline serve --workers N` (N > 1) for its workers, never by hand: the per-server directory where
    # they meet to sum their metrics (server/worker_metrics.py). "": one process, nothing to sum.
    metrics_dir: str = ""

    def base_url(self) -> str:
        """``public_url`` without a trailing slash, else ``http://{host}:{port}``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
