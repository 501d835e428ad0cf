"""Alert state machine, webhooks against a real local HTTP receiver (with a 500 then retry), gauges."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from driftline.drift import AlertManager, DriftReport, FeatureDrift
from driftline.server.webhooks import WebhookSender


def make_report(verdict, model="iris", version="1", drifted=("a",)):
    features = [
        FeatureDrift(
            name=name,
            kind="numeric",
            stat="ks",
            value=0.3 if name in drifted else 0.01,
            pvalue=0.001 if name in drifted else 0.8,
            threshold=0.05,
            verdict="drift" if name in drifted and verdict != "insufficient_data" else "ok",
            n_ref=100,
            n_cur=100,
            nan_ref=0,
            nan_cur=0,
        )
        for name in ("a", "b")
    ]
    return DriftReport(
        features=features,
        verdict=verdict,
        drift_share=0.5,
        drifted_share=0.5 if verdict == "drift" else 0.0,
        n_drifted=1 if verdict == "drift" else 0,
        preset="default",
        binning="quantile",
        n_ref_rows=100,
        n_cur_rows=100,
        model=model,
        version=version,
    )


class Receiver:
    """A real HTTP server on 127.0.0.1 that fails the first `failures` POSTs with 500."""

    def __init__(self, failures=0):
        self.bodies = []
        self.attempts = 0
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                receiver.attempts += 1
                if receiver.attempts <= receiver.failures:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(failures=1)
    yield r
    r.close()


def test_transitions_become_events():
    alerts = AlertManager()
    assert alerts.observe(make_report("ok")) is None
    event = alerts.observe(make_report("drift"))
    assert event is not None
    assert (event.previous, event.state, event.drifted_features) == ("ok", "drift", ["a"])
    assert alerts.observe(make_report("drift")) is None
    assert alerts.observe(make_report("insufficient_data")) is None
    assert alerts.state("iris", "1") == "drift"
    back = alerts.observe(make_report("ok"))
    assert back is not None
    assert (back.previous, back.state) == ("drift", "ok")
    # Versions are independent.
    assert alerts.observe(make_report("drift", version="2")) is not None
    assert alerts.state("iris", "1") == "ok"
    assert [e.state for e in alerts.events] == ["drift", "ok", "drift"]


def test_history_is_bounded():
    alerts = AlertManager(history=3)
    for i in range(10):
        alerts.observe(make_report("drift" if i % 2 == 0 else "ok"))
    assert len(alerts.events) == 3


def test_webhook_retries_after_500(receiver):
    sender = WebhookSender([receiver.url], retries=3, backoff=0.01, timeout=2)
    alerts = AlertManager(send=sender.send)
    try:
        alerts.observe(make_report("drift"))
        assert sender.flush(5)
        assert receiver.attempts == 2
        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert (body["model"], body["version"], body["previous"], body["state"]) == (
            "iris",
            "1",
            "ok",
            "drift",
        )
        assert body["drifted_features"] == ["a"]
        assert body["kind"] == "drift"  # one receiver may take drift and quality events alike
        assert (sender.delivered, sender.failed) == (1, 0)
    finally:
        sender.close()


def test_unreachable_webhook_gives_up_without_blocking(caplog):
    receiver = Receiver(failures=100)
    sender = WebhookSender([receiver.url], retries=2, backoff=0.01, timeout=1)
    alerts = AlertManager(send=sender.send)
    try:
        alerts.observe(make_report("drift"))  # returns at once; delivery runs on the sender thread
        assert sender.flush(5)
        assert receiver.attempts == 3
        assert sender.failed == 1
        assert "failed after 3 attempt(s)" in caplog.text
    finally:
        sender.close()
        receiver.close()


def test_prometheus_gauges():
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry)
    alerts.observe(make_report("drift"))
    labels = {"model": "iris", "version": "1", "feature": "a"}
    assert registry.get_sample_value("driftline_drift_detected", labels) == 1.0
    assert registry.get_sample_value("driftline_drift_pvalue", {**labels, "stat": "ks"}) == 0.001
    assert registry.get_sample_value("driftline_drift_distance", {**labels, "stat": "ks"}) is None
    alerts.observe(make_report("ok", drifted=()))
    assert registry.get_sample_value("driftline_drift_detected", labels) == 0.0
    assert registry.get_sample_value("driftline_drift_pvalue", {**labels, "stat": "ks"}) == 0.8


def test_distances_and_pvalues_are_separate_gauges():
    """A p-value falls with drift and a distance rises: one gauge for both could not carry one alert rule."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry)
    report = make_report("drift")
    report.features[1] = msgspec.structs.replace(report.features[1], stat="psi", value=0.4, pvalue=None)
    alerts.observe(report)
    assert (
        registry.get_sample_value(
            "driftline_drift_pvalue", {"model": "iris", "version": "1", "feature": "a", "stat": "ks"}
        )
        == 0.001
    )
    b = {"model": "iris", "version": "1", "feature": "b", "stat": "psi"}
    assert registry.get_sample_value("driftline_drift_distance", b) == 0.4
    assert registry.get_sample_value("driftline_drift_pvalue", b) is None
    assert registry.get_sample_value("driftline_drift_score", b) is None  # the mixed gauge is gone
