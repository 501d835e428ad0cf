"""Request ids and the access log: which requests get a line (sampled on the inference route), and the line.

A request's id is its ``X-Request-Id`` header when that is a valid id, else (inference) the protocol body's
``id``, else one generated here; every answer echoes it as ``X-Request-Id``. What is paid per inference when its
line is not written: a header compare, a clock read and one ``random()``; nothing is formatted.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import random
import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftline.logs.settings import LogSettings

__all__ = ["REQUEST_ID", "AccessLog", "AccessSampler", "RequestIds", "RequestNote", "checked_id"]

# The id of the request the current task serves, for log records that do not carry one (a 500's traceback).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("driftline_request_id", default=None)
HEADER = b"x-request-id"
# 1..128 visible ASCII characters: no space or control character can split or forge a log line or a header.
_VALID = re.compile(r"[!-~]{1,128}")
_access = logging.getLogger("driftline.access")


def checked_id(value: str | bytes | None) -> str | None:
    """``value`` as a request id when it is a valid one, else None (the caller takes the next source)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if _VALID.fullmatch(value) else None


class RequestIds:
    """Generated ids: a random per-process prefix and a counter (unique across workers and restarts, no syscall
    per request)."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._count = itertools.count()

    def new(self) -> str:
        """A fresh id, 22 hex digits."""
        return f"{self._prefix}{next(self._count):010x}"


class RequestNote:
    """What an inference learns on its way that its access line names: filled by http/infer.py as it goes."""

    __slots__ = ("id", "model", "rows", "version")

    def __init__(self, request_id: str | None = None) -> None:
        self.id = request_id  # a valid header id, else the body's, else None until one is generated
        self.model: str | None = None  # the model asked for, then the one that answered
        # The version that answered (None: none did).
        self.version: int | None = None
        self.rows: int | None = None


class AccessSampler:
    """Decides which answers get an access line: a share of the successes, every error up to a bound per second.

    The bound is per wall-clock second of ``clock`` (monotonic seconds); errors past it are counted in
    ``dropped`` until :meth:`take_dropped` is called.
    """

    __slots__ = ("_clock", "_random", "_second", "_taken", "dropped", "errors_per_s", "share")

    def __init__(
        self, share: float, errors_per_s: int, seed: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Keep ``share`` of the successes (seeded with ``seed`` when given) and ``errors_per_s`` errors a second."""
        self.share = share
        self.errors_per_s = errors_per_s
        self._random = random.Random(seed).random  # noqa: S311 - sampling, not security
        self._clock = clock
        self._second = -1
        self._taken = 0
        self.dropped = 0

    def sampled(self) -> bool:
        """Whether this success gets a line (``share`` of them at random)."""
        return self._random() < self.share

    def error(self) -> bool:
        """Whether this error answer gets a line: yes, unless this second's bound is reached (then it is counted)."""
        second = int(self._clock())
        if second != self._second:
            self._second = second
            self._taken = 0
        if self._taken < self.errors_per_s:
            self._taken += 1
            return True
        self.dropped += 1
        return False

    def take_dropped(self) -> int:
        """Errors not logged since the last call, once their second is over (0 while it still runs)."""
        if not self.dropped or int(self._clock()) == self._second:
            return 0
        dropped, self.dropped = self.dropped, 0
        return dropped


class AccessLog:
    """The access lines of one worker process: the inference route sampled, the other routes per the settings."""

    __slots__ = ("ids", "other_routes", "sampler")

    def __init__(self, settings: LogSettings, clock: Callable[[], float] = time.monotonic) -> None:
        """Sample and bound as ``settings`` say."""
        self.sampler = AccessSampler(settings.access_sample, settings.error_lines_per_s, settings.sample_seed, clock)
        self.other_routes = settings.other_routes
        self.ids = RequestIds()

    def wanted(self, status: int, inference: bool) -> bool:
        """Whether an answer with ``status`` gets a line: errors always (bounded); inference successes sampled;
        other routes' successes when ``other_routes`` is on."""
        if status >= 400:
            return self.sampler.error()
        return self.sampler.sampled() if inference else self.other_routes

    def write(
        self,
        request_id: str,
        method: str,
        path: str,
        status: int,
        latency_s: float,
        note: RequestNote | None = None,
    ) -> None:
        """Log one access line (``driftline.access``; info, warning for a 4xx, error for a 5xx)."""
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        latency_ms = round(latency_s * 1000, 3)
        fields = {
            "method": method,
            "path": path,
            "model": None if note is None else note.model,
            "version": None if note is None else note.version,
            "status": status,
            "latency_ms": latency_ms,
            "rows": None if note is None else note.rows,
        }
        _access.log(
            level,
            "%s %s %d %.3fms id=%s",
            method,
            path,
            status,
            latency_ms,
            request_id,
            extra={"request_id": request_id, "access": fields},
        )
        dropped = self.sampler.take_dropped()
        if dropped:
            _access.warning("%d error access lines over logs.error_lines_per_s were not written", dropped)
