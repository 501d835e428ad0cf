"""A raw-ASGI front for ``POST /v2/models/{name}[/versions/{v}]/infer``; everything else goes to Litestar.

Measured on the 2-core machine class with wrk (benchmarks/RESULTS.md): Litestar's routing, request and response
objects cost about 65 us per request, a raw ASGI handler about 20 us, and the inference route is the only one on the
hot path. The Litestar route with the same path stays registered (OpenAPI documents it, and it serves when the fast
path is off); both call :func:`driftline.http.infer.infer_rest`, so the protocol logic lives in one place.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.errors import DriftlineError, PayloadTooLarge
from driftline.http.deadline import BodyDeadline
from driftline.http.deps import services_of
from driftline.http.infer import HEADER_LENGTH, infer_rest
from driftline.http.methods import HeadAsGet
from driftline.logs.access import HEADER, REQUEST_ID, AccessLog, RequestNote, checked_id
from driftline.logs.settings import LogSettings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from litestar import Litestar

    from driftline.server.services import Services

    # Plain ASGI shapes: the fast path speaks the raw protocol, not Litestar's typed events.
    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["InferFastPath"]

_log = logging.getLogger("driftline.http")
_PREFIX = "/v2/models/"
_SUFFIX = "/infer"
_HEADER_LENGTH = HEADER_LENGTH.encode()
_error_encoder = msgspec.json.Encoder()
_CLOSE = (b"connection", b"close")


def _split(path: str) -> tuple[str, str | None] | None:
    """``/v2/models/m/infer`` -> ``(m, None)``; ``/v2/models/m/versions/2/infer`` -> ``(m, "2")``; else None."""
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    parts = path[len(_PREFIX) : -len(_SUFFIX)].split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        return parts[0], parts[2]
    return None


class InferFastPath:
    """ASGI app: serves inference directly, delegates every other request (and the lifespan) to Litestar."""

    def __init__(self, app: Litestar, access: AccessLog | None = None) -> None:
        """Wrap the Litestar app whose lifespan opens the services the fast path serves from; ``access`` gives
        the request ids and writes the access lines (default: the default ``[logs]`` settings)."""
        self.app = app
        self.access = AccessLog(LogSettings()) if access is None else access
        self._services: Services | None = None  # known once the lifespan has opened them
        self._head = HeadAsGet(app)  # type: ignore[arg-type]

    @property
    def services(self) -> Services:
        """The running server's services (asked of the app once, then kept: one attribute read per request)."""
        services = self._services
        if services is None:
            services = self._services = services_of(self.app.state)
        return services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection; every HTTP request's body is read under the body deadline (408), and every
        answer carries the request's ``X-Request-Id``.

        The inference route is matched first and wraps nothing but its body read: every layer around a request
        (a wrapped send, another ASGI app) costs microseconds on the one path where they count.
        """
        kind = scope["type"]
        if kind == "http":
            method = scope["method"]
            if method == "POST":
                target = _split(scope["path"])
                if target is not None:
                    await self._infer(scope, receive, send, *target)
                    return
            await self._other(scope, receive, send, method)
            return
        if kind == "lifespan":
            self._services = None  # a new lifespan opens new services: never serve from ones already closed
        await self.app(scope, receive, send)  # type: ignore[arg-type]

    async def _other(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        """Any request but an inference, to Litestar: its id (set for the task, so a 500's traceback names it) is
        echoed on the answer, and its access line written as ``[logs]`` says."""
        start = time.perf_counter()
        access = self.access
        request_id = None
        for key, value in scope["headers"]:
            if key == HEADER:
                request_id = checked_id(value)
                break
        if request_id is None:
            request_id = access.ids.new()
        REQUEST_ID.set(request_id)
        echo = (HEADER, request_id.encode())
        status = 0

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
                if self.services.drain.draining:  # as for an inference: the next request on a new connection
                    message["headers"].append(_CLOSE)
            await send(message)

        deadline = BodyDeadline(receive, send_with_id, self.services.settings.http.body_timeout_s)
        try:
            if method == "HEAD":
                await self._head(scope, deadline.receive, deadline.send)
            else:
                await self.app(scope, deadline.receive, deadline.send)  # type: ignore[arg-type]
        finally:
            if status and access.wanted(status, inference=False):
                access.write(request_id, method, scope["path"], status, time.perf_counter() - start)

    async def _infer(self, scope: Scope, receive: Receive, send: Send, name: str, version: str | None) -> None:
        start = time.perf_counter()
        services = self.services
        plane = services.plane
        limits = services.settings.http
        access = self.access
        status = 200
        headers: list[tuple[bytes, bytes]]
        note = RequestNote()
        note.model = name  # the model asked for; the one that answered once one does
        encoding: str | None = None
        header_length: str | None = None
        for key, value in scope["headers"]:
            if key == _HEADER_LENGTH:
                header_length = value.decode("latin-1")
            elif key == b"content-encoding":
                encoding = value.decode("latin-1")
            elif key == HEADER:
                note.id = checked_id(value)
        plane.in_flight += 1
        deadline = BodyDeadline(receive, send, limits.body_timeout_s)
        try:
            body = await self._read_body(deadline.receive, limits.max_request_bytes)
            if body is None:
                return  # the client left before its body was whole: nobody to answer, nothing to run
            payload, json_length = await infer_rest(
                plane, name, version, body, encoding, header_length, scope["headers"], limits.max_request_bytes, note
            )
            if json_length is None:
                headers = [(b"content-type", b"application/json")]
            else:
                headers = [
                    (b"content-type", b"application/octet-stream"),
                    (_HEADER_LENGTH, str(json_length).encode()),
                ]
        except DriftlineError as exc:
            status = exc.http_status
            payload = _error_encoder.encode({"error": str(exc)})
            headers = [(b"content-type", b"application/json")]
        except Exception as exc:  # noqa: BLE001 - answer 500 and keep serving, never drop the connection
            note.id = note.id or access.ids.new()
            _log.exception("unhandled error on POST %s", scope["path"], exc_info=exc, extra={"request_id": note.id})
            status = 500
            payload = _error_encoder.encode({"error": f"internal server error: {type(exc).__name__}"})
            headers = [(b"content-type", b"application/json")]
        finally:
            plane.in_flight -= 1
        if status != 200:
            plane.record_error(name, version, status)
        request_id = note.id
        if request_id is None:
            request_id = access.ids.new()
        headers.append((b"content-length", str(len(payload)).encode()))
        headers.append((HEADER, request_id.encode()))
        if deadline.expired or services.drain.draining:
            # Expired: the rest of the body may still come, not a next request. Draining: a client's next request
            # opens a new connection, which its balancer (or kube-proxy) sends to a server that is not stopping.
            headers.append(_CLOSE)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        if access.wanted(status, inference=True):  # after the answer is out: a written line costs it nothing
            access.write(request_id, "POST", scope["path"], status, time.perf_counter() - start, note)

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> bytes | None:
        """The whole request body, or None when the client disconnected before sending all of it."""
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            return None
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)
