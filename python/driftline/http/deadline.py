"""The request-body deadline, for every route: a body that has not arrived in full in time is answered 408.

uvicorn (and granian) wait for a body as long as the client keeps the connection open, so a request whose body is
shorter than its Content-Length would hold its connection and handler forever. The deadline runs from the first
read of the body, it is one total (a body trickled a byte at a time cannot extend it), and a request whose body
came with its headers (nearly all of them) never waits on it.
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


class BodyDeadline:
    """One request's ``receive`` and ``send`` with the body deadline; after a 408 the connection is closed (the
    rest of the body may still be on its way, and must not be read as the next request)."""

    __slots__ = ("_deadline", "_done", "_receive", "_send", "_timeout", "expired")

    def __init__(self, receive: Receive, send: Send, timeout_s: float) -> None:
        """Wrap one request's ASGI callables; ``timeout_s`` is the settings' ``http.body_timeout_s``."""
        self._receive = receive
        self._send = send
        self._timeout = timeout_s
        self._deadline: float | None = None
        self._done = False
        self.expired = False

    async def receive(self) -> MutableMapping[str, Any]:
        """The next body message, or :class:`RequestTimeout` (408) once the deadline has passed."""
        if self._done:
            return await self._receive()  # the body is in: later reads wait for a disconnect, unbounded
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self.expired = True
            raise RequestTimeout(
                f"the request body did not arrive within {self._timeout:g} s (http.body_timeout_s)"
            ) from None
        if not message.get("more_body", False):
            self._done = True
        return message

    async def send(self, message: MutableMapping[str, Any]) -> None:
        """Pass a message on; a response after an expired deadline closes the connection."""
        if self.expired and message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
        await self._send(message)
