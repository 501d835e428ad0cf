"""uvicorn's httptools protocol with what uvicorn does not offer: a header deadline and a connection cap.

uvicorn (0.30 .. 0.54) times out only an idle keep-alive connection *after a response* (``timeout_keep_alive``); a
connection that never completes its headers (an idle socket, a slowloris trickle) is held forever, and
``limit_concurrency`` answers 503 only once a request's headers are in, so idle sockets still pile up until the
process runs out of descriptors and stops accepting anyone. Here:

- a request's headers must be complete within ``http.header_timeout_s`` of its first byte (408, then close), and a
  new connection that sends nothing is closed after the same time;
- past ``http.max_connections`` open connections (kept below RLIMIT_NOFILE) a new one is answered 503 at once and
  closed, so the process keeps descriptors to serve the connections it has.

The settings come from :func:`driftline.config.load_settings`, as the app's do: every worker process rebuilds them
from the environment ``driftline serve`` exported.
"""

from __future__ import annotations

import contextlib
import functools
import resource
import socket
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from driftline.config import load_settings

if TYPE_CHECKING:
    import asyncio

__all__ = ["LimitedHttpToolsProtocol", "connection_cap"]

# Seconds a refused connection is kept half-closed to drain what its client already sent: closing a socket with
# unread input sends a reset, which can destroy the answer before the client reads it. Under a flood the
# descriptors matter more, so past _MAX_LINGERING refused connections in a process the next ones close at once.
_LINGER_S = 0.5
_MAX_LINGERING = 16


def _answer(status: bytes, error: str) -> bytes:
    body = b'{"error": "' + error.encode() + b'"}'
    head = b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
    return head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def connection_cap(max_connections: int, soft_limit: int | None = None) -> int:
    """``max_connections`` lowered so the process keeps descriptors for models, the store, logs and threads."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0] if soft_limit is None else soft_limit
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - max(32, soft // 8)))


@functools.cache
def _limits() -> tuple[float, int, bytes, bytes]:
    http = load_settings().http
    busy = _answer(b"503 Service Unavailable", "too many open connections (http.max_connections); retry later")
    late = _answer(b"408 Request Timeout", f"request headers not complete within {http.header_timeout_s:g} s")
    return http.header_timeout_s, connection_cap(http.max_connections), busy, late


class _HeaderSweep:
    """The connections of one event loop waiting for headers, checked every quarter of the timeout (at most a
    second). A timer per request (``call_later`` and its cancel) cost about 3 us on the hot path; this costs a set
    insertion and removal."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.waiting: set[LimitedHttpToolsProtocol] = set()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, conn: LimitedHttpToolsProtocol) -> None:
        self.waiting.add(conn)
        if self._handle is None:
            self._handle = self.loop.call_later(min(1.0, self.timeout / 4), self._run)

    def _run(self) -> None:
        self._handle = None
        due = self.loop.time() - self.timeout
        for conn in [c for c in self.waiting if c.waiting_since <= due]:
            self.waiting.discard(conn)
            conn.headers_late()
        if self.waiting:
            self._handle = self.loop.call_later(min(1.0, self.timeout / 4), self._run)


_sweeps: dict[asyncio.AbstractEventLoop, _HeaderSweep] = {}


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """One connection: uvicorn's protocol, plus the header deadline and the connection cap."""

    _lingering = 0  # refused connections of this process still draining (one event loop: no lock needed)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As uvicorn's; the limits are read once per process."""
        super().__init__(*args, **kwargs)
        self._header_timeout, self._max_connections, self._busy, self._late = _limits()
        self._timer: asyncio.TimerHandle | None = None  # a refused connection's linger
        sweep = _sweeps.get(self.loop)
        if sweep is None:
            if len(_sweeps) > 8:  # loops of finished test servers; a server process has one
                _sweeps.clear()
            sweep = _sweeps[self.loop] = _HeaderSweep(self.loop, self._header_timeout)
        self._sweep = sweep
        self.waiting_since = 0.0  # loop time the wait for headers began (while in the sweep's set)
        self._in_headers = False
        self._refused = False
        self._lingers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse past the cap (503 now, not a stall), else start the wait for a request's headers."""
        super().connection_made(transport)
        # Set here whatever the listener: uvicorn writes a response's headers and body separately, and without
        # TCP_NODELAY the second write waits out the client's 40 ms delayed ACK (it did while the listener was
        # handed to uvicorn as `fd=`, which uvicorn opens as AF_UNIX). A Unix socket refuses the option: no harm.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self.connections) > self._max_connections:
            self._refuse(self._busy)
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Parse, unless the connection was refused (then its input is drained)."""
        if not self._refused:
            super().data_received(data)

    def eof_received(self) -> None:
        """A refused connection closes as soon as its client is done sending."""
        if self._refused:
            self.transport.close()

    def on_message_begin(self) -> None:
        """A request's first byte: its headers are due within the header timeout."""
        super().on_message_begin()
        self._in_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        """The headers are in; uvicorn takes over (the body deadline is the app's)."""
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline and the linger timer with the connection."""
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lingers:
            self._lingers = False
            LimitedHttpToolsProtocol._lingering -= 1
        super().connection_lost(exc)

    def _arm(self) -> None:
        self.waiting_since = self.loop.time()
        self._sweep.add(self)

    def _disarm(self) -> None:
        self._sweep.waiting.discard(self)

    def headers_late(self) -> None:
        """Called by the sweep: no complete headers within the timeout (408 mid-request, else a silent close)."""
        if self.transport.is_closing():
            return
        if self._in_headers:
            self._refuse(self._late)
        else:
            self.transport.close()  # idle: nothing was asked, nothing to answer

    def _refuse(self, answer: bytes) -> None:
        self._refused = True
        self.transport.write(answer)
        if LimitedHttpToolsProtocol._lingering >= _MAX_LINGERING or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        LimitedHttpToolsProtocol._lingering += 1
        self._lingers = True
        self._timer = self.loop.call_later(_LINGER_S, self.transport.close)
