"""HTTP methods answered the same way on every route: ``HEAD`` wherever ``GET`` is, and an ``Allow`` header (on
405 and ``OPTIONS``) that lists every method of the path.

Litestar answers HEAD only where a separate ``@head`` handler exists, so a load balancer's ``HEAD /v2/health/live``
got 405. Answering it in front of the app covers every GET route with the GET handler itself (the GET's status and
headers, no body: RFC 9110 9.3.2), so the two can never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, MutableMapping

    from litestar.types import Message as LitestarMessage
    from litestar.types import Scope as LitestarScope

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["HeadAsGet", "allow_header", "complete_options_allow"]


def allow_header(methods: Iterable[str]) -> str:
    """The ``Allow`` value for these methods, with HEAD wherever GET is (see :class:`HeadAsGet`)."""
    allowed = {m.strip().upper() for m in methods if m.strip()}
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


async def complete_options_allow(message: LitestarMessage, scope: LitestarScope) -> None:
    """Litestar hook (``before_send``): list every method of the path in an OPTIONS answer's ``Allow``.

    Litestar computes it from the first handler registered on a path only (``/v1/jobs`` said ``GET, OPTIONS``
    although it takes POST), so a client or a schema checker was told the wrong methods.
    """
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    paths = getattr(scope.get("route_handler"), "paths", ())
    methods = {m for route in scope["app"].routes if route.path in paths for m in getattr(route, "methods", ())}
    if not methods:
        return
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
    headers.append((b"allow", allow_header(methods).encode()))
    message["headers"] = headers


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
