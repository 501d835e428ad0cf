"""The server's one webhook sender: every alert event (drift and quality) is POSTed from one background thread."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["WebhookSender"]

log = logging.getLogger("driftline.server.webhooks")


class WebhookSender:
    """POSTs JSON to URLs from one background thread, with retries and exponential backoff.

    `send` never blocks: it enqueues (dropping, with a log line, when `max_pending` are waiting).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
        max_pending: int = 1000,
    ) -> None:
        self.urls = list(urls)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_pending)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driftline-webhooks", daemon=True)
        self._thread.start()

    def send(self, body: bytes) -> None:
        """Queue a JSON body for every URL.

        Args:
            body: The JSON payload.
        """
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.failed += len(self.urls)
            log.warning("webhook queue full; dropped an event for %d url(s)", len(self.urls))

    def _post(self, url: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - URLs come from the operator's config
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            response.read()

    def _deliver(self, url: str, body: bytes) -> None:
        for attempt in range(self.retries + 1):
            try:
                self._post(url, body)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if attempt == self.retries:
                    self.failed += 1
                    log.error(  # noqa: TRY400 - one line per failure, not a traceback
                        "webhook %s failed after %d attempt(s): %s", url, attempt + 1, exc
                    )
                    return
                log.warning("webhook %s attempt %d failed: %s; retrying", url, attempt + 1, exc)
                # Exponential backoff; waiting on the stop event lets close() cut it short.
                if self._stop.wait(self.backoff * 2**attempt):
                    return
            else:
                self.delivered += 1
                return

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is None:
                    return
                for url in self.urls:
                    self._deliver(url, body)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event has been delivered or given up.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            Whether the queue drained in time.
        """
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within `timeout`), then stop the thread.

        Args:
            timeout: Seconds to wait for the thread.
        """
        self.flush(timeout)
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
