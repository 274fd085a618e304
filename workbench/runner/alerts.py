"""Alerts POSTed as JSON to a webhook, from a sender thread, so raising one never waits.

The runner raises an alert on a risk breach, the kill switch, a stale or invalid feed and a
restart (:data:`KINDS`). Each is one HTTP POST (``Content-Type: application/json``) of one
object::

    {"kind": "kill_switch", "message": "daily loss limit hit: trading stopped",
     "time": "2026-05-09T07:35:25.123456Z", "seq": 3, "strategy": "vol_breakout",
     ...fields}

``kind`` and ``message`` as given; ``time`` when :meth:`WebhookAlerter.alert` was called
(ISO-8601, UTC, µs); ``seq`` counts this alerter's alerts from 1 (a receiver can spot the
duplicate a retry after a lost reply makes); ``strategy`` only when the alerter was given
one; then the keyword fields of the call, made JSON-safe the way the JSON log makes them
(:func:`~workbench.runner.jsonlog.jsonable`: secrets masked, odd values as strings).

Delivery: a 2xx reply is delivered. A connection failure, a timeout, a 429 or a 5xx is
retried after ``backoff``·2^(n−1) seconds (capped at :data:`BACKOFF_CAP`), ``retries``
times; any other status (4xx, a redirect: a POST is not re-sent elsewhere) fails at once.
An alert that failed is logged as an ERROR and counted; the caller never sees an exception.
The queue is bounded: when it is full the OLDEST alert is dropped (counted; one warning per
overflowing stretch). Every alert is also logged as a WARNING (field ``alert``: the object
above), so the JSON log has it even when the webhook is down or there is none.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from types import TracebackType
from typing import Any

from workbench.errors import UsageError
from workbench.runner.jsonlog import iso_utc, jsonable
from workbench.threads import SupervisedThread, join_all, restart_delay

log = logging.getLogger(__name__)

KINDS = ("risk_breach", "kill_switch", "feed_stale", "feed_invalid", "restart")
"""The kinds the runner raises (any other non-empty string is accepted too)."""
RESERVED = frozenset({"kind", "message", "time", "seq", "strategy"})
"""Keys of the alert object a keyword field may not take."""
BACKOFF_CAP = 30.0
"""Seconds: the longest wait between two attempts at one alert."""
JOIN_SLACK = 1.0
"""Seconds :meth:`WebhookAlerter.close` waits for the sender beyond its own timeout."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a place to POST to: it fails the alert as its status."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Retry(Exception):
    """An attempt failed in a way another attempt may not (network, 429, 5xx)."""


class WebhookAlerter:
    """Sends alerts to ``url`` (http or https); with ``url=None`` it only logs and counts them.

    ``retries``: attempts after the first; ``backoff``: seconds before the first retry
    (doubled per retry); ``timeout``: seconds per attempt; ``queue_size``: alerts waiting
    for the sender before the oldest are dropped. The sender thread starts with the first
    alert; :meth:`close` ends it."""

    def __init__(
        self,
        url: str | None,
        *,
        strategy: str | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
        queue_size: int = 100,
    ) -> None:
        if url is not None:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(
                    f"alert webhook must be an http:// or https:// URL with a host, not {url!r}"
                )
        if retries < 0 or backoff < 0 or timeout <= 0 or queue_size < 1:
            raise UsageError(
                "alerts need retries >= 0, backoff >= 0, timeout > 0 and queue_size >= 1 "
                f"(got {retries}, {backoff}, {timeout}, {queue_size})"
            )
        self.url = url
        self.strategy = strategy
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.queue_size = queue_size
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._lock = threading.Lock()
        self._queue: deque[bytes] = deque()
        self._wake = threading.Event()
        self._closing = threading.Event()
        """Set by close(): the sender stops waiting between attempts and ends once the queue
        is empty or the deadline passed."""
        self._deadline = float("inf")
        self._thread: SupervisedThread | None = None
        self._overflowing = False
        self._seq = 0
        self._sent = 0
        self._failed = 0
        self._dropped = 0
        self._last_error: str | None = None

    # -- the caller's side --------------------------------------------------------------------

    def alert(self, kind: str, message: str, **fields: object) -> None:
        """Log the alert and queue it for the webhook; returns at once."""
        clash = RESERVED & fields.keys()
        if clash or not kind:
            raise UsageError(
                f"an alert needs a kind, and its fields may not be named {sorted(RESERVED)} "
                f"(got kind {kind!r}, fields {sorted(clash)})"
            )
        with self._lock:
            self._seq += 1
            seq = self._seq
        body: dict[str, object] = {
            "kind": kind,
            "message": message,
            "time": iso_utc(time.time()),
            "seq": seq,
        }
        if self.strategy is not None:
            body["strategy"] = self.strategy
        body.update(fields)
        payload = jsonable(body)
        log.warning("alert %s: %s", kind, message, extra={"alert": payload})
        if self.url is None:
            return
        data = json.dumps(payload).encode()
        overflowed = False
        with self._lock:
            if self._closing.is_set():
                self._dropped += 1
                log.warning("alerts: closed, alert %d (%s) not sent", seq, kind)
                return
            self._queue.append(data)
            if len(self._queue) > self.queue_size:
                self._queue.popleft()
                self._dropped += 1
                overflowed = not self._overflowing
                self._overflowing = True
            if self._thread is None:
                self._thread = SupervisedThread(
                    self._run, name="wb-alerts", restart=True, stop=self._closing
                )
                self._thread.start()
        self._wake.set()
        if overflowed:
            log.warning(
                "alerts: more than %d waiting for %s, dropping the oldest",
                self.queue_size,
                self.endpoint,
            )

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within ``timeout`` seconds, then end the sender thread.

        Waits between attempts are cut short: each remaining attempt is made at once (the
        process is ending; a late alert beats none). Alerts still queued at the deadline
        count as dropped, the one being sent then as failed. Safe to call twice."""
        with self._lock:
            if self._closing.is_set():
                return
            self._deadline = time.monotonic() + timeout
            self._closing.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            join_all([thread], timeout + JOIN_SLACK, owner="alerts")

    def __enter__(self) -> WebhookAlerter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- counters -----------------------------------------------------------------------------

    @property
    def alerts(self) -> int:
        """Alerts raised (delivered or not, with or without a webhook)."""
        with self._lock:
            return self._seq

    @property
    def sent(self) -> int:
        with self._lock:
            return self._sent

    @property
    def failed(self) -> int:
        """Alerts given up on: every attempt failed, or the webhook refused it."""
        with self._lock:
            return self._failed

    @property
    def dropped(self) -> int:
        """Alerts never attempted: pushed out of a full queue, or left at close."""
        with self._lock:
            return self._dropped

    @property
    def endpoint(self) -> str | None:
        """The webhook's scheme, host and port only: its path often holds a token."""
        if self.url is None:
            return None
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "webhook": self.endpoint,
                "alerts": self._seq,
                "queued": len(self._queue),
                "sent": self._sent,
                "failed": self._failed,
                "dropped": self._dropped,
                "last_error": self._last_error,
                "closed": self._closing.is_set(),
            }

    # -- the sender thread --------------------------------------------------------------------

    def _run(self) -> None:
        while (data := self._next()) is not None:
            self._deliver(data)

    def _next(self) -> bytes | None:
        """The oldest queued alert; None once closing and nothing is left (or time is up)."""
        while True:
            with self._lock:
                if self._queue:
                    if self._time_left() > 0:
                        return self._queue.popleft()
                    left = len(self._queue)
                    self._queue.clear()
                    self._dropped += left
                    log.warning("alerts: %d not sent, closed before their turn", left)
                    return None
                self._overflowing = False
                if self._closing.is_set():
                    return None
                self._wake.clear()
            self._wake.wait()

    def _time_left(self) -> float:
        return self._deadline - time.monotonic()

    def _deliver(self, data: bytes) -> None:
        attempts = self.retries + 1
        made = 0
        error = "closed before the first attempt"
        for attempt in range(1, attempts + 1):
            left = self._time_left()
            if left <= 0:
                break
            made = attempt
            try:
                self._post(data, min(self.timeout, left))
            except _Retry as exc:
                error = str(exc)
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} {exc.reason}"
                break
            else:
                with self._lock:
                    self._sent += 1
                return
            if attempt < attempts:
                self._closing.wait(restart_delay(attempt, self.backoff, BACKOFF_CAP))
        with self._lock:
            self._failed += 1
            self._last_error = error
        log.error(
            "alerts: gave up on an alert to %s after %d attempts: %s", self.endpoint, made, error
        )

    def _post(self, data: bytes, timeout: float) -> None:
        assert self.url is not None
        request = urllib.request.Request(
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "workbench-alerts"},
        )
        try:
            with self._opener.open(request, timeout=timeout) as reply:
                reply.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 429 or exc.code >= 500:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
            raise
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise _Retry(f"{type(reason).__name__}: {reason}") from None
