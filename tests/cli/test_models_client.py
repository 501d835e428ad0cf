"""`driftline models ...` against what is not a driftline server: one line on stderr, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest
from tests.e2e.conftest import free_port
from tests.helpers import assert_one_line_refusal

if TYPE_CHECKING:
    from collections.abc import Iterator


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "models", *args], capture_output=True, text=True, timeout=60
    )


class _NotDriftline(BaseHTTPRequestHandler):
    """Answers every request like some other web server: an HTML page, 200 on /ok paths and 502 elsewhere."""

    def do_GET(self) -> None:
        ok = self.path.startswith("/ok")
        body = b"<html>\n<body>\n<h1>Bad Gateway</h1>\n</body>\n</html>\n"
        self.send_response(200 if ok else 502)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def not_driftline() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotDriftline)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("url", ["not-a-url", "ftp://127.0.0.1:21", "http://"])
def test_a_bad_url_is_one_line(url: str):
    assert_one_line_refusal(models("status", "--url", url), "--url")


def test_a_refused_connection_is_one_line():
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_line_refusal(models("status", "--url", url), "cannot reach", url)


def test_a_key_that_cannot_be_a_header_is_one_line():
    assert_one_line_refusal(
        models("status", "--url", f"http://127.0.0.1:{free_port()}", "--key", "two\nlines"), "--key"
    )


def test_an_answer_that_is_not_json_is_one_line(not_driftline: str):
    assert_one_line_refusal(models("status", "--url", f"{not_driftline}/ok"), "not JSON")


def test_an_html_error_page_is_one_line(not_driftline: str):
    assert_one_line_refusal(models("audit", "--url", not_driftline), "HTTP 502", "Bad Gateway")
