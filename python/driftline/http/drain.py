"""SIGTERM and SIGINT as a load balancer needs them: readiness answers 503 at once, requests go on being served for
``http.drain_delay_s`` seconds (so the balancer's health check sees it and stops sending), then the server's own
graceful shutdown runs: stop accepting, finish every request in flight, drain the queues, exit.

uvicorn has no drain hook, and with ``--workers`` its supervisor builds each worker's server itself; so the app,
which runs in every worker process, wraps the handler the server installed (with ``signal.signal``, in the main
thread, before the lifespan starts) and hands the stop on to it when the delay is over.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from types import FrameType

    from driftline.server.drain import Drain

    Handler = Callable[[int, FrameType | None], Any]

__all__ = ["drain_on_signal"]

_log = logging.getLogger("driftline.server")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A repeat this soon after the first signal is the same stop, not an impatient operator: a terminal's Ctrl-C and
# systemd's stop reach every process of the group, and the worker supervisor forwards the signal too (at once,
# then again from its half-second poll).
_REPEAT_S = 1.0


class _SignalDrain:
    """The handler in front of the server's: the first signal drains, a later one cuts the delay short."""

    def __init__(self, drain: Drain, delay_s: float, previous: dict[int, Handler]) -> None:
        self.drain = drain
        self.delay_s = delay_s
        self.previous = previous
        self.loop = asyncio.get_running_loop()
        self.handed_over = False
        self.timer: asyncio.TimerHandle | None = None

    def handle(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: only assignments here, and one call_soon_threadsafe into the loop (logging from a
        # handler can re-enter a stream's write and fail).
        since = self.drain.since
        if since is None:
            self.drain.begin(signal.Signals(sig).name, self.delay_s)
            self.loop.call_soon_threadsafe(self._started, sig)
        elif not self.handed_over:
            waited = time.monotonic() - since
            if waited >= _REPEAT_S:
                self.handed_over = True
                why = f"drain delay cut short after {waited:.1f} s by a second {signal.Signals(sig).name}"
                self.loop.call_soon_threadsafe(self._hand_over, sig, why)
        else:
            self.previous[sig](sig, frame)  # the server's own rules from here (uvicorn: another Ctrl-C forces)

    def _started(self, sig: int) -> None:
        _log.info(
            "draining after %s: /v2/health/ready answers 503; serving %g s more (http.drain_delay_s), then stopping",
            signal.Signals(sig).name,
            self.delay_s,
        )
        if not self.handed_over:
            self.timer = self.loop.call_later(self.delay_s, self._delay_over, sig)

    def _delay_over(self, sig: int) -> None:
        if not self.handed_over:
            self.handed_over = True
            self._hand_over(sig, f"drain delay of {self.delay_s:g} s over")

    def _hand_over(self, sig: int, why: str) -> None:
        if self.timer is not None:
            self.timer.cancel()
        _log.info("%s: shutting down (no new connections; the requests in flight are finished)", why)
        self.previous[sig](sig, None)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


@asynccontextmanager
async def drain_on_signal(drain: Drain, delay_s: float) -> AsyncIterator[None]:
    """While entered, SIGTERM/SIGINT first set ``drain`` and only ``delay_s`` seconds later reach the server's handler.

    Nothing is installed when ``delay_s`` is 0, off the main thread (an app run by a test client) or when no Python
    handler is there to hand the stop to (no server handles the signals): the signals then do what they did.
    """
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    handlers: dict[int, Handler] = {int(sig): h for sig, h in previous.items() if callable(h)}
    if delay_s <= 0 or threading.current_thread() is not threading.main_thread() or len(handlers) < len(previous):
        yield
        return
    wrapper = _SignalDrain(drain, delay_s, handlers)
    for caught in _SIGNALS:
        signal.signal(caught, wrapper.handle)
    try:
        yield
    finally:
        wrapper.close()
        for number, handler in handlers.items():
            if signal.getsignal(number) == wrapper.handle:
                signal.signal(number, handler)
