"""The runner's Prometheus metrics and its HTTP endpoint (``/metrics``, ``/health``).

:class:`RunnerMetrics` owns a private :class:`~prometheus_client.CollectorRegistry` (never the
process-wide default one: several runners, or tests, in one process do not collide), with
the process collector in it (``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
open fds, start time; on Linux). The runner calls its methods and never touches a
prometheus object. Every metric is named ``workbench_<thing>_<unit>``:

    workbench_runner_info{strategy,symbol}          info     what this process runs
    workbench_runner_up                             gauge    1 while the runner trades
    workbench_runner_restarts_total                 counter  engine loop restarts
    workbench_feed_messages_total                   counter  events from the feed
    workbench_feed_messages_per_second              gauge    over the last WINDOW seconds
    workbench_feed_lag_seconds                      gauge    recv_ts − ts of the newest event
    workbench_feed_last_message_age_seconds         gauge    since the newest event (stale)
    workbench_feed_gaps_total                       counter  sequence gaps the feed saw
    workbench_book_valid                            gauge    1 valid, 0 invalid (gap → snapshot)
    workbench_decisions_total                       counter  strategy decisions
    workbench_decision_latency_seconds              histogram  10 µs … 10 ms buckets
    workbench_orders_total{status}                  counter  order state changes
    workbench_fills_total                           counter
    workbench_risk_rejects_total{reason}            counter  orders the risk manager refused
    workbench_pnl_quote                             gauge    in the quote currency
    workbench_equity_quote                          gauge
    workbench_position_base{symbol}                 gauge    in the base currency
    workbench_risk_state                            gauge    0 active, 1 paused, 2 killed

``workbench_risk_state`` is one numeric gauge rather than an Enum (one series per state):
``workbench_risk_state > 0`` is the whole alert rule, and the codes order by severity.
The two ``msgs/s`` are both there on purpose: ``rate(workbench_feed_messages_total[1m])`` is
what Prometheus graphs; the gauge is what a human curling ``/metrics`` reads.

:class:`MetricsServer` serves the registry and a health callable on 127.0.0.1 only.
"""

from __future__ import annotations

import errno
import http.server
import json
import logging
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from workbench.core.risk import RiskState
from workbench.errors import UsageError
from workbench.threads import SupervisedThread, join_all

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The only address the endpoint listens on: metrics and health are for this machine (a
Prometheus agent or a reverse proxy on it), never the open network."""
WINDOW = 10.0
"""Seconds :meth:`RunnerMetrics.refresh` averages ``workbench_feed_messages_per_second`` over."""
_SLOT = 0.1
"""Seconds per slot of the message-rate window (the rate's resolution at the window's edge)."""
LATENCY_BUCKETS = (
    10e-6,
    25e-6,
    50e-6,
    100e-6,
    250e-6,
    500e-6,
    1e-3,
    2.5e-3,
    5e-3,
    10e-3,
)
"""Decision latency bounds in seconds: a strategy's ``on_*`` costs tens of µs to a few ms."""
RISK_STATES: dict[str, int] = {"active": 0, "paused": 1, "killed": 2}
"""The value of ``workbench_risk_state`` for each state, ordered by severity."""
POLL = 0.1
"""Seconds the HTTP thread waits for a request before it looks at its stop event again."""
REQUEST_TIMEOUT = 5.0
"""Seconds a client may take to send its request (a stuck client cannot hold a thread)."""


class RunnerMetrics:
    """The metrics of one runner (table in the module docstring), in a registry of its own.

    Thread-safe: prometheus objects lock themselves and the rate window has a lock. ``clock``
    (monotonic seconds) is what the message rate and age are measured on."""

    def __init__(
        self, strategy: str, symbol: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.strategy = strategy
        self.symbol = symbol
        self.registry = CollectorRegistry()
        """The registry to expose (:class:`MetricsServer` does, ``generate_latest`` can)."""
        reg = self.registry
        ProcessCollector(registry=reg)
        Info("workbench_runner", "What this runner process runs.", registry=reg).info(
            {"strategy": strategy, "symbol": symbol}
        )
        self._up = Gauge("workbench_runner_up", "1 while the runner is trading.", registry=reg)
        self._restarts = Counter(
            "workbench_runner_restarts_total",
            "Times the runner restarted its engine loop after a failure.",
            registry=reg,
        )
        self._messages = Counter(
            "workbench_feed_messages_total", "Events received from the feed.", registry=reg
        )
        self._rate = Gauge(
            "workbench_feed_messages_per_second",
            f"Feed events per second over the last {WINDOW:g} s.",
            registry=reg,
        )
        self._lag = Gauge(
            "workbench_feed_lag_seconds",
            "Receipt time minus exchange time of the newest event.",
            registry=reg,
        )
        self._age = Gauge(
            "workbench_feed_last_message_age_seconds",
            "Seconds since the newest feed event (since start before the first).",
            registry=reg,
        )
        self._gaps = Counter(
            "workbench_feed_gaps_total", "Sequence gaps the feed detected.", registry=reg
        )
        self._book_valid = Gauge(
            "workbench_book_valid",
            "1 when the order book is valid, 0 from a gap until the next snapshot.",
            registry=reg,
        )
        self._decisions = Counter(
            "workbench_decisions_total", "Orders the strategy decided on.", registry=reg
        )
        self._latency = Histogram(
            "workbench_decision_latency_seconds",
            "From the receipt of the event a decision was made on to the order it made.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._orders = Counter(
            "workbench_orders_total", "Orders by the status they reached.", ["status"], registry=reg
        )
        self._fills = Counter("workbench_fills_total", "Fills received.", registry=reg)
        self._rejects = Counter(
            "workbench_risk_rejects_total",
            "Orders the risk manager refused, by reason.",
            ["reason"],
            registry=reg,
        )
        self._pnl = Gauge("workbench_pnl_quote", "Profit and loss, quote currency.", registry=reg)
        self._equity = Gauge("workbench_equity_quote", "Equity, quote currency.", registry=reg)
        self._position = Gauge(
            "workbench_position_base", "Position, base currency.", ["symbol"], registry=reg
        )
        self._position.labels(symbol=symbol).set(0.0)
        self._risk = Gauge(
            "workbench_risk_state", "Risk state: 0 active, 1 paused, 2 killed.", registry=reg
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_message: float | None = None
        self._window: deque[list[int]] = deque()
        """[slot, events] per _SLOT of the last WINDOW seconds that had events, oldest first."""
        self._gaps_seen = 0

    # -- feed ---------------------------------------------------------------------------------

    def feed_message(self, lag_s: float | None = None) -> None:
        """One event from the feed; ``lag_s`` its ``recv_ts − ts`` (None: no exchange time)."""
        self._messages.inc()
        if lag_s is not None:
            self._lag.set(lag_s)
        now = self._clock()
        slot = int(now / _SLOT)
        with self._lock:
            self._last_message = now
            if self._window and self._window[-1][0] == slot:
                self._window[-1][1] += 1
            else:
                self._window.append([slot, 1])

    def feed_health(self, *, valid: bool, gaps: int) -> None:
        """The feed's book validity and its gap count so far (its status's ``gaps``).

        The count is cumulative; the counter grows by the difference. A count lower than the
        last one means a new feed counting from zero: all of it is new."""
        with self._lock:
            new = gaps - self._gaps_seen if gaps >= self._gaps_seen else gaps
            self._gaps_seen = gaps
        if new:
            self._gaps.inc(new)
        self._book_valid.set(1 if valid else 0)

    def refresh(self) -> float:
        """Recompute the time-based gauges (message rate, message age); call it about once a
        second. Returns the message rate: events in the last WINDOW seconds per second (per
        second since start while the runner is younger than WINDOW)."""
        now = self._clock()
        first = int((now - WINDOW) / _SLOT)
        with self._lock:
            while self._window and self._window[0][0] <= first:
                self._window.popleft()
            events = sum(count for _, count in self._window)
            last = self._started if self._last_message is None else self._last_message
        span = min(WINDOW, now - self._started)
        rate = events / span if span > 0 else 0.0
        self._rate.set(rate)
        self._age.set(max(0.0, now - last))
        return rate

    # -- strategy, orders, account ------------------------------------------------------------

    def decision(self, latency_s: float) -> None:
        """The strategy made an order ``latency_s`` seconds after the event it was made on
        was received."""
        self._decisions.inc()
        self._latency.observe(latency_s)

    def order(self, status: str) -> None:
        """An order reached ``status`` (``submitted``, ``filled``, ``canceled``, …)."""
        self._orders.labels(status=status).inc()

    def fill(self) -> None:
        self._fills.inc()

    def reject(self, reason: str) -> None:
        """The risk manager refused an order; ``reason`` is the rule's short name (keep the
        set small: each reason is a time series)."""
        self._rejects.labels(reason=reason).inc()

    def account(self, *, equity: float, pnl: float, position: float) -> None:
        """Equity and PnL in the quote currency, the position in the base currency."""
        self._equity.set(equity)
        self._pnl.set(pnl)
        self._position.labels(symbol=self.symbol).set(position)

    def risk_state(self, state: RiskState) -> None:
        if state not in RISK_STATES:
            raise UsageError(f"unknown risk state {state!r}: expected one of {list(RISK_STATES)}")
        self._risk.set(RISK_STATES[state])

    # -- runner -------------------------------------------------------------------------------

    def up(self, up: bool) -> None:
        """The runner started (True) or stopped (False) trading."""
        self._up.set(1 if up else 0)

    def restart(self) -> None:
        self._restarts.inc()


Health = Callable[[], Mapping[str, Any]]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, metrics: RunnerMetrics, health: Health) -> None:
        self.metrics = metrics
        self.health = health
        super().__init__((HOST, port), _Handler)
        self.timeout = POLL

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's FQDN up (a DNS query) only to name itself.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        log.exception("metrics endpoint: request from %s failed", client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encode, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, content_type, encode(server.metrics.registry))
        elif path == "/health":
            status, body = _health(server.health)
            self._reply(status, "application/json", body)
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found: try /metrics or /health\n")

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics endpoint: " + format, *args)


def _health(health: Health) -> tuple[int, bytes]:
    """HTTP 200 when the report's ``ok`` is True (exactly), else 503; a callable that raises
    is unhealthy too, its error in the report."""
    try:
        report = dict(health())
    except Exception as exc:
        log.exception("metrics endpoint: the health check raised")
        report = {"ok": False, "error": f"health check failed: {type(exc).__name__}: {exc}"}
    status = 200 if report.get("ok") is True else 503
    return status, json.dumps(report, default=str).encode() + b"\n"


class MetricsServer:
    """``/metrics`` (Prometheus text, or OpenMetrics when asked) and ``/health`` (JSON from
    ``health``: 200 when its ``ok`` is True, 503 otherwise) on 127.0.0.1:``port``; anything
    else is a 404. ``port=0`` lets the system pick a free port (see :attr:`port`)."""

    def __init__(self, metrics: RunnerMetrics, port: int, health: Health) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise UsageError(f"metrics port must be 0…65535 (0: any free port), not {port!r}")
        self.metrics = metrics
        self.requested_port = port
        self._health = health
        self._server: _Server | None = None
        self._thread: SupervisedThread | None = None
        self._stopping = threading.Event()
        self.lingering: list[str] = []
        """The HTTP thread's name if it was still alive when :meth:`stop` stopped waiting."""

    def start(self) -> MetricsServer:
        """Listen and serve in a daemon thread. A port in use is a :class:`UsageError`."""
        if self._server is not None:
            raise UsageError("this metrics server was already started")
        port = self.requested_port
        try:
            server = _Server(port, self.metrics, self._health)
        except OSError as exc:
            raise UsageError(_bind_failure(port, exc)) from exc
        self._server = server
        self._thread = SupervisedThread(
            self._serve, name=f"wb-metrics-{server.server_port}", restart=True, stop=self._stopping
        )
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics, health on /health", HOST, server.server_port)
        return self

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        while not self._stopping.is_set():
            server.handle_request()  # returns after POLL without a request

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving, join the HTTP thread within ``timeout`` and close the socket (the
        port is free again). Safe to call twice, or before :meth:`start`."""
        self._stopping.set()
        if self._thread is not None:
            self.lingering = join_all([self._thread], timeout, owner="metrics server")
        if self._server is not None:
            self._server.server_close()

    @property
    def port(self) -> int:
        """The port listened on (the system's pick when 0 was asked for)."""
        if self._server is None:
            raise UsageError("the metrics server is not started: call start() first")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _bind_failure(port: int, exc: OSError) -> str:
    where = f"cannot serve metrics on {HOST}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where}: the port is in use (another runner or program listens there); "
            "choose another metrics port, or 0 to let the system pick a free one"
        )
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied; choose a port above 1023"
    return f"{where}: {exc.strerror or exc}"
