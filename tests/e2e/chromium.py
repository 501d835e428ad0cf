"""A small driver of real headless Chromium over the DevTools protocol, for tests that look at pages as a browser
renders them: load a page, collect every console error and uncaught exception, read the DOM, set cookies, take
screenshots. The network is cut off as in test_docs_page.py: every name but 127.0.0.1 fails to resolve and every
non-loopback request goes to a proxy that is not there."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.helpers import exited_unreaped
from websockets.sync.client import ClientConnection, connect

__all__ = ["CHROMIUM", "Browser"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Browser:
    """One headless Chromium with one page (tab), driven over its DevTools WebSocket."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        assert CHROMIUM is not None
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"),
                *("--disable-background-networking", "--disable-component-update", "--no-first-run"),
                "--disable-extensions",
                f"--user-data-dir={profile}",
                "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1200,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group: close() ends the browser with its zygote and renderers. A browser left behind
            # by a test run that was itself killed held most of a core for 40 minutes here.
            start_new_session=True,
        )
        try:
            self._open()
        except BaseException:
            self._end_group()
            raise

    def _open(self) -> None:
        url = self._devtools_url()
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        with connect(url, max_size=None, open_timeout=self.timeout) as browser:
            target = self._call(browser, "Target.createTarget", url="about:blank")["targetId"]
        port = url.split("/")[2]
        self._stack = contextlib.ExitStack()
        page = connect(f"ws://{port}/devtools/page/{target}", max_size=None, open_timeout=self.timeout)
        self.ws: ClientConnection = self._stack.enter_context(page)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _devtools_url(self) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + self.timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            found = _LISTENING.search(line)
            if found:
                # Keep reading what it prints from here on, or a full pipe would stall the browser.
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return found.group(1)
        raise RuntimeError("chromium did not print its DevTools address:\n" + "".join(seen[-30:]))

    def _call(self, ws: ClientConnection, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command to the page and return its result (events seen meanwhile are kept)."""
        return self._call(self.ws, method, **params)

    def _wait_for(self, method: str, since: int) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == method for e in self.events[since:]):
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if "method" in message:
                self.events.append(message)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        since = len(self.events)
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"{url}: {result['errorText']}")
        self._wait_for("Page.loadEventFired", since)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools runs it, the page itself has no script)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self, selector: str) -> str | None:
        """The text of the first element matching ``selector`` (None: no such element)."""
        return self.evaluate(f"(e => e && e.textContent)(document.querySelector({json.dumps(selector)}))")

    def texts(self, selector: str) -> list[str]:
        """The texts of every element matching ``selector``."""
        return self.evaluate(f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent)")

    def rows(self, table: str) -> list[list[str]]:
        """The cell texts of each body row of the table matching ``table`` (a CSS selector)."""
        return self.evaluate(
            f"[...document.querySelectorAll({json.dumps(table + ' tbody tr')})]"
            ".map(r => [...r.cells].map(c => c.textContent))"
        )

    def errors(self, since: int = 0) -> list[str]:
        """Console errors, log entries of level error and uncaught exceptions since event ``since``."""
        found = []
        for e in self.events[since:]:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in {"error", "assert"}:
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                found.append(f"{p['entry'].get('text')} ({p['entry'].get('url')})")
            elif e["method"] == "Runtime.exceptionThrown":
                found.append(str(p.get("exceptionDetails", {}).get("text")))
        return found

    def set_cookie(self, name: str, value: str, url: str) -> None:
        """Set a cookie as the server would have (HttpOnly, SameSite=Strict, Path=/ui)."""
        ok = self.call(
            "Network.setCookie", name=name, value=value, url=url, path="/ui", httpOnly=True, sameSite="Strict"
        )
        assert ok.get("success", True), ok

    def clear_cookies(self) -> None:
        self.call("Network.clearBrowserCookies")

    def screenshot(self, path: Path, width: int = 1200, height: int = 900) -> Path:
        """A PNG of the viewport at ``width`` x ``height``."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def _end_group(self) -> None:
        """SIGTERM to the browser's whole process group, SIGKILL after 10 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        exited_unreaped(self.proc, 10)  # not reaped: the group id stays ours for the SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self._end_group()
