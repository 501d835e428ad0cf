"""`_core.LoadGenerator` against a tiny raw HTTP server (exact counts, errors, slow answers, chunked) and driftline."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import write_config

from driftline._core import CoreError, LoadGenerator
from driftline.repository.demo import build_mlp_onnx

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
ANSWERS = {
    "ok": OK,
    "500": b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "close": b"",
}


class RawServer:
    """Answers every request with one fixed response, after `delay` seconds; counts requests it read."""

    def __init__(self, mode: str, delay: float = 0.0) -> None:
        self.mode, self.delay, self.requests = mode, delay, 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        self.sock.settimeout(0.2)
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by close()
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        buf = b""
        with conn:
            while self.running:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    try:
                        rest += conn.recv(65536)
                    except OSError:
                        return
                buf = rest[length:]
                with self.lock:
                    self.requests += 1
                time.sleep(self.delay)
                if self.mode == "close":
                    return
                try:
                    conn.sendall(ANSWERS[self.mode])
                except OSError:
                    return

    def close(self) -> None:
        self.running = False
        self.sock.close()


@pytest.fixture
def raw(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    mode, delay = request.param
    server = RawServer(mode, delay)
    yield server
    server.close()


@pytest.mark.parametrize("raw", [("ok", 0.0)], indirect=True)
def test_closed_loop_counts_match_the_server(raw: RawServer) -> None:
    gen = LoadGenerator("127.0.0.1", raw.port, "/x", [b"{}", b"[1]"], connections=4)
    with gen:
        gen.start()
        window = gen.window(0.5)
    done = len(window.latencies_us)
    assert done > 50
    assert window.errors == 0
    assert window.backlog == 0
    assert window.threads == 2
    assert 0 < window.generator_cpu_s < 2 * window.seconds
    # Every answer counted was read by the server; the server saw at most the few sent before the window opened.
    assert done <= raw.requests <= done + done // 5 + 8
    assert 0 <= window.sent - done <= 4


@pytest.mark.parametrize("raw", [("chunked", 0.0)], indirect=True)
def test_chunked_answers_are_framed(raw: RawServer) -> None:
    with LoadGenerator("127.0.0.1", raw.port, "/x", [b"{}"], connections=2) as gen:
        gen.start()
        window = gen.window(0.3)
    assert len(window.latencies_us) > 10
    assert window.errors == 0


@pytest.mark.parametrize("raw", [("500", 0.0), ("close", 0.0)], indirect=True)
def test_errors_are_counted_not_lost(raw: RawServer) -> None:
    with LoadGenerator("127.0.0.1", raw.port, "/x", [b"{}"], connections=2) as gen:
        gen.start()
        window = gen.window(0.3)
    assert len(window.latencies_us) == 0
    assert window.errors > 5
    assert window.sent >= window.errors


@pytest.mark.parametrize("raw", [("ok", 0.0)], indirect=True)
def test_open_loop_sends_about_rate_times_seconds(raw: RawServer) -> None:
    with LoadGenerator("127.0.0.1", raw.port, "/x", [b"{}"], connections=4, rate=200.0) as gen:
        gen.start()
        window = gen.window(1.0)
    # Poisson(200): sd ~14; the bounds are generous for a loaded machine.
    assert 120 <= window.sent <= 280
    assert window.errors == 0


@pytest.mark.parametrize("raw", [("ok", 0.0)], indirect=True)
def test_open_loop_sleeps_between_arrivals(raw: RawServer) -> None:
    # A wait under 1 ms once truncated to a 0 ms epoll timeout: the threads spun until each arrival was due.
    with LoadGenerator("127.0.0.1", raw.port, "/x", [b"{}"], connections=2, rate=2000.0) as gen:
        gen.start()
        window = gen.window(1.0)
    # Two spinning threads burn ~2 CPU-s per s; sleeping ones a small fraction of that even on a loaded machine.
    assert window.generator_cpu_s < 0.7 * window.seconds


@pytest.mark.parametrize("raw", [("ok", 0.05)], indirect=True)
def test_slow_server_grows_the_backlog_and_latency_includes_the_wait(raw: RawServer) -> None:
    # One connection serves 20/s; 200/s arrive, so arrivals queue and their latency counts from their arrival.
    with LoadGenerator("127.0.0.1", raw.port, "/x", [b"{}"], connections=1, rate=200.0) as gen:
        gen.start()
        window = gen.window(0.8)
    assert window.backlog > 50
    assert len(window.latencies_us) > 0
    assert int(np.max(window.latencies_us)) > 200_000


def test_trace_arrivals_replay_with_a_speed_factor() -> None:
    server = RawServer("ok")
    try:
        arrivals = np.arange(100, dtype=np.float64) / 100.0  # 100/s
        with LoadGenerator("127.0.0.1", server.port, "/x", [b"{}"], connections=2, rate=2.0, arrivals=arrivals) as g:
            g.start()
            window = g.window(0.5)
        assert 60 <= window.sent <= 140  # 200/s for 0.5 s
    finally:
        server.close()


def test_stop_and_drop_terminate_promptly() -> None:
    server = RawServer("ok", delay=0.5)
    try:
        gen = LoadGenerator("127.0.0.1", server.port, "/x", [b"{}"], connections=8)
        gen.start()
        began = time.monotonic()
        gen.stop()
        gen.stop()
        assert time.monotonic() - began < 1.0
        with pytest.raises(CoreError, match="not running"):
            gen.window(0.1)
        with pytest.raises(CoreError, match="already started"):
            gen.start()
        bounded = LoadGenerator("127.0.0.1", server.port, "/x", [b"{}"], connections=2, max_seconds=0.2)
        bounded.start()
        time.sleep(0.4)
        began = time.monotonic()
        del bounded
        assert time.monotonic() - began < 1.0
    finally:
        server.close()


def test_cannot_connect_is_an_oserror() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(OSError, match="cannot connect"):
        LoadGenerator("127.0.0.1", port, "/x", [b"{}"], connections=1).start()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "10.0.0.1"}, "loopback.*10.0.0.1"),
        ({"host": "example.com"}, "loopback"),
        ({"connections": 0}, "connections"),
        ({"connections": 4097}, "connections"),
        ({"threads": 65}, "threads"),
        ({"threads": -1}, "threads"),
        ({"bodies": []}, "bodies"),
        ({"bodies": [b"x" * (64 * 1024 * 1024 + 1)]}, r"bodies\[0\]"),
        ({"rate": -1.0}, "rate"),
        ({"rate": float("inf")}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"arrivals": np.array([0.0, 2.0, 1.0])}, "ascending"),
        ({"arrivals": np.array([0.0, np.nan])}, "finite"),
        ({"path": "x"}, "path"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"headers": [("A\r\nB", "c")]}, "headers"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"host": "127.0.0.1", "port": 9, "path": "/x", "bodies": [b"{}"], "connections": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        LoadGenerator(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [0.0, -1.0, 3601.0, float("nan")])
def test_bad_window_is_refused(seconds: float) -> None:
    gen = LoadGenerator("::1", 9, "/x", [b"{}"], connections=1)
    with pytest.raises(ValueError, match="window seconds"):
        gen.window(seconds)


@pytest.mark.e2e
def test_closed_loop_against_driftline_matches_its_stats(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "mlp" / "1").mkdir(parents=True)
    build_mlp_onnx(root / "mlp" / "1" / "model.onnx", 8, 16, 1, 2, seed=1)
    write_config(root / "mlp", "max_batch_size = 8\n")
    server = start_server(root, tmp_path)
    try:
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 8], "datatype": "FP32", "data": [0.5] * 8}]})
        with LoadGenerator("127.0.0.1", server.port, "/v2/models/mlp/infer", [body.encode()], connections=4) as gen:
            gen.start()
            window = gen.window(1.0)
            gen.stop()
        assert window.errors == 0
        assert len(window.latencies_us) > 20
    finally:
        server.stop()
