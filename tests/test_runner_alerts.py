"""Webhook alerts delivered to a real HTTP server on 127.0.0.1 that records what it got."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from workbench.errors import UsageError
from workbench.runner.alerts import WebhookAlerter

WAIT = 10.0
"""Seconds a test waits for something that should happen at once (a bound, not a timing)."""


class Webhook(http.server.ThreadingHTTPServer):
    """Answers each POST with the next of ``statuses`` (the last one repeats)."""

    daemon_threads = True

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Recorder)
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.attempts = 0
        self.received = threading.Condition()
        self.hold: threading.Event | None = None
        """When set to an event, each request waits for it before answering."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/s3cr3t-token"

    def wait_for(self, attempts: int) -> None:
        with self.received:
            assert self.received.wait_for(lambda: self.attempts >= attempts, WAIT)


class Recorder(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        hook = cast(Webhook, self.server)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with hook.received:
            status = hook.statuses[min(hook.attempts, len(hook.statuses) - 1)]
            hook.attempts += 1
            if status == 200:
                hook.bodies.append(body)
                hook.paths.append(self.path)
            hook.received.notify_all()
        if hook.hold is not None:
            hook.hold.wait(WAIT)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[Callable[..., Webhook]]:
    started: list[tuple[Webhook, threading.Thread]] = []

    def start(*statuses: int) -> Webhook:
        hook = Webhook(list(statuses) or [200])
        thread = threading.Thread(target=hook.serve_forever, args=(0.05,), name="test-webhook")
        thread.start()
        started.append((hook, thread))
        return hook

    yield start
    for hook, thread in started:
        if hook.hold is not None:
            hook.hold.set()
        hook.shutdown()
        hook.server_close()
        thread.join(WAIT)


def quick(url: str | None, **kwargs: Any) -> WebhookAlerter:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("backoff", 0.001)
    return WebhookAlerter(url, **kwargs)


def test_alerts_arrive_as_one_json_object_each_with_their_fields(
    webhook: Callable[..., Webhook],
) -> None:
    hook = webhook(200)
    alerter = quick(hook.url, strategy="vol_breakout")
    alerter.alert("kill_switch", "daily loss limit hit", loss=-512.5, limit=500)
    alerter.alert("feed_stale", "no message for 30 s", feed="coinbase")
    alerter.close()

    first, second = hook.bodies
    assert set(first) == {"kind", "message", "time", "seq", "strategy", "loss", "limit"}
    assert first["kind"] == "kill_switch"
    assert first["message"] == "daily loss limit hit"
    assert first["strategy"] == "vol_breakout"
    assert (first["loss"], first["limit"], first["seq"]) == (-512.5, 500, 1)
    assert first["time"].endswith("Z") and len(first["time"]) == len("2026-05-09T07:35:25.123456Z")
    assert (second["kind"], second["feed"], second["seq"]) == ("feed_stale", "coinbase", 2)
    assert hook.paths == ["/hooks/s3cr3t-token"] * 2
    assert alerter.status() == {
        "webhook": f"http://127.0.0.1:{hook.server_address[1]}",  # no path: it holds a token
        "alerts": 2,
        "queued": 0,
        "sent": 2,
        "failed": 0,
        "dropped": 0,
        "last_error": None,
        "closed": True,
    }


def test_fields_are_made_json_safe_and_secrets_masked(webhook: Callable[..., Webhook]) -> None:
    hook = webhook(200)
    alerter = quick(hook.url)
    alerter.alert("risk_breach", "position limit", api_key="abc", limits={"max": 1.0}, at=object())
    alerter.close()
    (body,) = hook.bodies
    assert body["api_key"] == "***"
    assert body["limits"] == {"max": 1.0}
    assert body["at"].startswith("<object object at")
    assert "strategy" not in body


def test_5xx_and_429_are_retried_until_delivered(webhook: Callable[..., Webhook]) -> None:
    hook = webhook(500, 429, 200)
    alerter = quick(hook.url, retries=2)
    alerter.alert("restart", "engine loop restarted", count=1)
    alerter.close()
    assert hook.attempts == 3
    assert [b["kind"] for b in hook.bodies] == ["restart"]
    assert (alerter.sent, alerter.failed) == (1, 0)


def test_a_webhook_that_always_fails_is_counted_and_logged_never_raised(
    webhook: Callable[..., Webhook], caplog: pytest.LogCaptureFixture
) -> None:
    hook = webhook(503)
    alerter = quick(hook.url, retries=2)
    with caplog.at_level(logging.WARNING, logger="workbench.runner.alerts"):
        alerter.alert("kill_switch", "stop")
        alerter.close()
    assert hook.attempts == 3
    assert (alerter.sent, alerter.failed, alerter.dropped) == (0, 1, 0)
    assert alerter.status()["last_error"] == "HTTP 503 Service Unavailable"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"alerts: gave up on an alert to http://127.0.0.1:{hook.server_address[1]} "
        "after 3 attempts: HTTP 503 Service Unavailable"
    ]


def test_a_4xx_is_not_retried(webhook: Callable[..., Webhook]) -> None:
    hook = webhook(404, 200)
    alerter = quick(hook.url, retries=3)
    alerter.alert("feed_invalid", "book crossed")
    alerter.close()
    assert hook.attempts == 1
    assert (alerter.sent, alerter.failed) == (0, 1)


def test_a_webhook_not_listening_is_retried_then_counted_failed() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    alerter = quick(f"http://127.0.0.1:{port}/hook", retries=1)
    alerter.alert("feed_stale", "no data")
    alerter.close()
    assert (alerter.sent, alerter.failed) == (0, 1)
    assert "Connection refused" in alerter.status()["last_error"]


def test_a_full_queue_drops_the_oldest_and_counts_them(webhook: Callable[..., Webhook]) -> None:
    hook = webhook(200)
    hook.hold = threading.Event()
    alerter = quick(hook.url, queue_size=2)
    alerter.alert("restart", "1")
    hook.wait_for(1)  # alert 1 is in flight, held by the server: the queue is empty
    for n in range(2, 6):
        alerter.alert("restart", str(n))
    assert alerter.dropped == 2
    hook.hold.set()
    alerter.close()
    assert [b["message"] for b in hook.bodies] == ["1", "4", "5"]
    assert (alerter.sent, alerter.dropped) == (3, 2)


def test_close_delivers_everything_queued(webhook: Callable[..., Webhook]) -> None:
    hook = webhook(200)
    alerter = quick(hook.url)
    for n in range(20):
        alerter.alert("risk_breach", f"breach {n}")
    alerter.close()
    assert [b["seq"] for b in hook.bodies] == list(range(1, 21))
    assert alerter.status()["queued"] == 0
    assert alerter.sent == 20


def test_close_cuts_a_backoff_short_and_makes_the_last_attempts_at_once(
    webhook: Callable[..., Webhook],
) -> None:
    hook = webhook(500)
    alerter = WebhookAlerter(hook.url, retries=2, backoff=600.0)
    alerter.alert("kill_switch", "stop")
    hook.wait_for(1)  # the sender now waits 600 s before its retry
    alerter.close(timeout=5.0)
    assert hook.attempts == 3
    assert (alerter.sent, alerter.failed) == (0, 1)


def test_alerts_after_close_are_dropped(webhook: Callable[..., Webhook]) -> None:
    hook = webhook(200)
    alerter = quick(hook.url)
    alerter.close()
    alerter.alert("restart", "too late")
    assert (alerter.alerts, alerter.sent, alerter.dropped) == (1, 0, 1)
    assert hook.attempts == 0


def test_without_a_url_alerts_are_only_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alerter = WebhookAlerter(None)
    with caplog.at_level(logging.WARNING, logger="workbench.runner.alerts"):
        alerter.alert("kill_switch", "stop", reason="loss")
    alerter.close()
    assert alerter.status() == {
        "webhook": None,
        "alerts": 1,
        "queued": 0,
        "sent": 0,
        "failed": 0,
        "dropped": 0,
        "last_error": None,
        "closed": True,
    }
    (record,) = caplog.records
    assert record.getMessage() == "alert kill_switch: stop"
    assert record.alert["reason"] == "loss"  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http:///path"])
def test_a_webhook_url_that_is_not_http_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="http:// or https:// URL"):
        WebhookAlerter(url)


def test_a_field_named_like_the_envelope_is_a_usage_error() -> None:
    alerter = WebhookAlerter(None)
    with pytest.raises(UsageError, match=r"fields \['time'\]"):
        alerter.alert("restart", "x", time=1)
