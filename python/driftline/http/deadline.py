"""The request-body deadline, for every route: a body that has not arrived in full in time is answered 408.

uvicorn (and granian) wait for a body as long as the client keeps the connection open, so a request whose body is
shorter than its Content-Length would hold its connection and handler forever. The deadline runs from the first
read of the body, it is one total (a body trickled a byte at a time cannot extend it).

Nothing is scheduled per request: a timer per body read (``asyncio.timeout_at``) cost about 9 us, several percent
of a whole small request. A read registers itself while it waits, and one sweep per process (every quarter of
the timeout, at most a second) cancels the reads past their deadline, which then answer 408.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from driftline.errors import RequestTimeout

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["BodyDeadline"]

_CLOSE = (b"connection", b"close")


class _Sweep:
    """The body reads of one event loop that are waiting now, and the periodic check of their deadlines."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.waiting: set[BodyDeadline] = set()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, read: BodyDeadline) -> None:
        self.waiting.add(read)
        if self._handle is None:
            self._handle = self.loop.call_later(self.interval, self._run)

    def _run(self) -> None:
        self._handle = None
        now = self.loop.time()
        for read in [r for r in self.waiting if r.deadline <= now]:
            read.expire()
        if self.waiting:
            self._handle = self.loop.call_later(self.interval, self._run)


_sweeps: dict[asyncio.AbstractEventLoop, _Sweep] = {}


def _sweep_for(loop: asyncio.AbstractEventLoop, timeout_s: float) -> _Sweep:
    sweep = _sweeps.get(loop)
    if sweep is None:
        if len(_sweeps) > 8:  # loops of finished test clients; a server process has one
            _sweeps.clear()
        sweep = _sweeps[loop] = _Sweep(loop, min(1.0, timeout_s / 4))
    return sweep


class BodyDeadline:
    """One request's ``receive`` and ``send`` with the body deadline; after a 408 the connection is closed (the
    rest of the body may still be on its way, and must not be read as the next request)."""

    __slots__ = ("_done", "_receive", "_send", "_task", "_timeout", "deadline", "expired")

    def __init__(self, receive: Receive, send: Send, timeout_s: float) -> None:
        """Wrap one request's ASGI callables; ``timeout_s`` is the settings' ``http.body_timeout_s``."""
        self._receive = receive
        self._send = send
        self._timeout = timeout_s
        self._task: asyncio.Task[Any] | None = None
        self._done = False
        self.deadline = 0.0  # loop time; set on the first read
        self.expired = False

    async def receive(self) -> MutableMapping[str, Any]:
        """The next body message, or :class:`RequestTimeout` (408) once the deadline has passed."""
        if self._done:
            return await self._receive()  # the body is in: later reads wait for a disconnect, unbounded
        loop = asyncio.get_running_loop()
        if self._task is None:
            self.deadline = loop.time() + self._timeout
            self._task = asyncio.current_task()
        if self.expired:
            raise self._timed_out()
        sweep = _sweep_for(loop, self._timeout)
        sweep.add(self)
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self.expired or self._task is None:
                raise
            self._task.uncancel()  # our cancel, not the server's: the task goes on to answer 408
            raise self._timed_out() from None
        finally:
            sweep.waiting.discard(self)
        if not message.get("more_body", False):
            self._done = True
        return message

    def expire(self) -> None:
        """Called by the sweep: the deadline passed while this read was waiting."""
        self.expired = True
        if self._task is not None:
            self._task.cancel()

    def _timed_out(self) -> RequestTimeout:
        return RequestTimeout(f"the request body did not arrive within {self._timeout:g} s (http.body_timeout_s)")

    async def send(self, message: MutableMapping[str, Any]) -> None:
        """Pass a message on; a response after an expired deadline closes the connection."""
        if self.expired and message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
        await self._send(message)
