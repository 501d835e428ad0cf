"""``HEAD`` on every ``GET`` route: the GET's status and headers, no body (RFC 9110 9.3.2).

Litestar answers HEAD only where a separate ``@head`` handler exists, so a load balancer's ``HEAD /v2/health/live``
got 405. Answering it in front of the app covers every GET route with the GET handler itself, so the two can
never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["HeadAsGet"]


class HeadAsGet:
    """ASGI wrapper: runs a HEAD request as GET and sends no body."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app`` (its attributes stay reachable as ``self.app``)."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the server sends the final empty body below
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
