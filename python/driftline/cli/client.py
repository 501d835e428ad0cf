"""The stdlib HTTP client of the ``/v1/admin`` API that ``driftline models ...`` commands drive.

The server is ``--url`` or ``$DRIFTLINE_URL`` (default http://127.0.0.1:8000), the key ``--key`` or
``$DRIFTLINE_API_KEY``. An HTTP error becomes an ApiError carrying the server's message, which main() prints as
one line (exit 2), like every other user error of the CLI.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from driftline.errors import BadRequest, DriftlineError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["DEFAULT_URL", "ApiError", "add_client_options", "add_command", "call", "download", "print_json"]

DEFAULT_URL = "http://127.0.0.1:8000"
_CHUNK = 1 << 20
_T = TypeVar("_T")


class ApiError(DriftlineError):
    """The server refused a request; the message is its own."""


def print_json(value: Any) -> int:
    """Print an answer of the API as indented JSON (what ``--json`` and the change commands print); exit code 0."""
    print(json.dumps(value, indent=2))
    return 0


def add_client_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags `call` reads: ``--url``, ``--key``, ``--timeout``."""
    parser.add_argument("--url", help=f"driftline server (default $DRIFTLINE_URL or {DEFAULT_URL})")
    parser.add_argument("--key", help="API key (default $DRIFTLINE_API_KEY)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server")
    return parser


def add_command(
    sub: Any, name: str, help_text: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """A subcommand of a client of the server: under ``sub`` (a subparsers action), with the client flags, running
    ``func``."""
    parser: argparse.ArgumentParser = add_client_options(sub.add_parser(name, help=help_text))
    parser.set_defaults(func=func)
    return parser


def call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One request to the admin API; returns the decoded JSON answer.

    Raises:
        BadRequest: ``--url`` is no http(s) URL, or ``--key`` cannot be sent as a header.
        ApiError: the server cannot be reached, refuses the request, or answers something that is not JSON.
    """

    def decode(response: http.client.HTTPResponse) -> Any:
        raw = response.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(
                f"{method} {response.geturl()}: the answer is not JSON (is this a driftline server?)"
            ) from None

    return _open(args, method, path, json.dumps(body).encode() if body is not None else None, decode)


def download(args: argparse.Namespace, path: str, sink: BinaryIO) -> int:
    """``GET path`` streamed into ``sink`` in chunks (an export may be larger than memory); returns the bytes.

    Raises:
        BadRequest / ApiError: as :func:`call`.
    """

    def copy(response: http.client.HTTPResponse) -> int:
        total = 0
        while chunk := response.read(_CHUNK):
            sink.write(chunk)
            total += len(chunk)
        return total

    return _open(args, "GET", path, None, copy)


def _open(
    args: argparse.Namespace,
    method: str,
    path: str,
    data: bytes | None,
    read: Callable[[http.client.HTTPResponse], _T],
) -> _T:
    """Send one request with ``--url`` and ``--key`` and hand the answer to ``read``; errors as :func:`call`."""
    base = (args.url or os.environ.get("DRIFTLINE_URL") or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise BadRequest(f"--url {base!r} (or DRIFTLINE_URL) must look like http://HOST:PORT")
    url = base + path
    key = args.key or os.environ.get("DRIFTLINE_API_KEY")
    if key is not None and (not key or not key.isascii() or not key.isprintable() or " " in key):
        raise BadRequest("--key (or DRIFTLINE_API_KEY) must be printable ASCII without spaces, as keys are")
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - checked to be http(s) above
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310
            return read(response)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            message = text
        raise ApiError(f"{method} {path}: HTTP {exc.code}: {_one_line(str(message))}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ApiError(f"cannot reach the driftline server at {url}: {reason} (set --url or DRIFTLINE_URL)") from None


def _one_line(text: str, limit: int = 300) -> str:
    """An error body as one line (an HTML error page from a proxy has many)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
