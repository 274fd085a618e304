"""Connection failures are loud and retries stay polite.

Every failure a user can meet pointing ``workbench record`` at the wrong place — a wrong path
(HTTP 404 on upgrade), a refused port, a server that accepts TCP and never answers the
handshake, one that never acknowledges the subscription, one that refuses a symbol — shows in
the feed status with the URL and the HTTP status or errno, is printed once while the CLI
retries, and ends the CLI with exit code 3 and a one-line reason. The backoff starts over
only after a healthy session, so a server that answers and hangs up sees the wait grow to
its cap; the whole handshake has one deadline. Servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import random
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import ENV, free_port, wait_for
from tests.helpers.replay_server import GUID, ReplayServer, Script
from tests.venue_e2e import serve
from workbench.cli import EXIT_NOT_SUBSCRIBED
from workbench.feeds.connection import Backoff, Connection
from workbench.feeds.feed import Feed
from workbench.notebook.widgets.status import FeedStatusWidget
from workbench.sim.server import SimConfig, SimServer
from workbench.store import Store
from workbench.workbench import Workbench

SYM = "BTC-USD"
REFUSED = f"connection refused (errno {errno.ECONNREFUSED})"


# -- servers that misbehave ------------------------------------------------------------------
class SilentServer:
    """Accepts TCP connections and reads what arrives, answering nothing, ever."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                client, _ = self._sock.accept()
                self.accepted += 1
                self._clients.append(client)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for client in [self._sock, *self._clients]:
            client.close()


class TricklingServer:
    """Answers the upgrade correctly, but one byte every ``interval`` seconds; counts the
    bytes it got out before the client hung up."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.response_length = 0
        self.sent = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve_one, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _serve_one(self) -> None:
        client, _ = self._sock.accept()
        with client, contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                request += client.recv(4096)
            key = re.search(rb"Sec-WebSocket-Key: (\S+)", request, re.IGNORECASE)
            assert key is not None
            accept = base64.b64encode(hashlib.sha1(key.group(1) + GUID).digest())
            response = (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.response_length = len(response)
            for byte in response:
                if self._stop.wait(self.interval):
                    break
                client.sendall(bytes([byte]))
                self.sent += 1
        self.finished.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(port=0, seed=3, symbols=(SYM,), rate=100)) as server:
        yield server


# -- a connection on its own ------------------------------------------------------------------
class _Ceiling(random.Random):
    """Jitter pinned to its top, so every wait is exactly the backoff's ceiling."""

    def random(self) -> float:
        return 1.0


class RecordedBackoff(Backoff):
    def __init__(self) -> None:
        super().__init__(base=0.01, cap=0.08, rng=_Ceiling())
        self.delays: list[float] = []

    def next_delay(self) -> float:
        delay = super().next_delay()
        self.delays.append(delay)
        return delay


GROWING = [0.01, 0.02, 0.04, 0.08, 0.08, 0.08, 0.08]
"""The waits of a backoff that never starts over: doubling from the base to the cap."""


class Handler:
    """What a feed would do, reduced: subscribe, and call an ``ack`` frame an acknowledgement."""

    def __init__(self, ack: bytes | None = None) -> None:
        self.ack = ack
        self.connection: Connection | None = None
        self.connected = 0
        self.payloads: list[bytes] = []

    def on_connected(self, conn: int) -> list[str]:
        self.connected += 1
        return ['{"op":"subscribe"}']

    def on_messages(self, conn: int, payloads: list[bytes], recv_ts: int) -> None:
        self.payloads += payloads
        if self.ack in payloads and self.connection is not None:
            self.connection.mark_subscribed()

    def on_oversized(self, conn: int, prefix: bytes, recv_ts: int) -> None:
        raise AssertionError("no oversized frames here")

    def on_disconnected(self, conn: int, reason: str, *, stale: bool) -> None:
        pass


@contextlib.contextmanager
def connection(
    url: str, handler: Handler, *, connect_timeout: float = 5.0, healthy_after: float = 30.0
) -> Iterator[Connection]:
    conn = Connection(
        1,
        url,
        handler,
        heartbeat=lambda: None,
        heartbeat_interval=0,
        stale_after=5.0,
        connect_timeout=connect_timeout,
        healthy_after=healthy_after,
        backoff=RecordedBackoff(),
        name="failures",
    )
    handler.connection = conn
    conn.start()
    try:
        yield conn
    finally:
        conn.stop()
        assert conn.join(3.0)


def delays(conn: Connection) -> list[float]:
    assert isinstance(conn.backoff, RecordedBackoff)
    return conn.backoff.delays


def test_a_server_that_answers_and_hangs_up_sees_the_backoff_grow_to_its_cap(
    servers: list[ReplayServer],
) -> None:
    storm = serve(servers, Script([b'{"error":"rate limited"}'], close_after=True))
    handler = Handler()
    with connection(storm.ws_url, handler) as conn:
        assert wait_for(lambda: len(delays(conn)) >= len(GROWING), 10)
    assert delays(conn)[: len(GROWING)] == pytest.approx(GROWING)
    assert storm.connections >= len(GROWING)
    assert handler.payloads.count(b'{"error":"rate limited"}') >= len(GROWING) - 1  # data came
    assert conn.last_error == f"closed by server at {storm.ws_url}"


def test_an_acknowledged_session_that_ends_before_healthy_after_does_not_reset_the_backoff(
    servers: list[ReplayServer],
) -> None:
    flaky = serve(servers, Script([b"subscribed", b"tick"], close_after=True))
    with connection(flaky.ws_url, Handler(ack=b"subscribed"), healthy_after=60.0) as conn:
        assert wait_for(lambda: len(delays(conn)) >= len(GROWING), 10)
    assert delays(conn)[: len(GROWING)] == pytest.approx(GROWING)


def test_a_session_healthy_for_healthy_after_starts_the_backoff_over(
    servers: list[ReplayServer],
) -> None:
    healthy = serve(servers, Script([b"subscribed", b"tick"], close_after=True))
    with connection(healthy.ws_url, Handler(ack=b"subscribed"), healthy_after=0.0) as conn:
        assert wait_for(lambda: len(delays(conn)) >= 5, 10)
    assert delays(conn)[:5] == pytest.approx([0.01] * 5)


def test_a_refused_port_names_the_errno_and_the_url() -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws"
    handler = Handler()
    with connection(url, handler) as conn:
        assert wait_for(lambda: conn.last_error is not None, 5)
        assert conn.last_error == f"connect failed: {REFUSED} at {url}"
    assert handler.connected == 0


def test_a_wrong_path_is_http_404_on_upgrade(sim: SimServer) -> None:
    url = f"ws://127.0.0.1:{sim.port}"  # no /ws
    handler = Handler()
    with connection(url, handler) as conn:
        assert wait_for(lambda: conn.last_error is not None, 5)
        assert conn.last_error == f"HTTP 404 on upgrade at {url}"
    assert handler.connected == 0


def test_a_server_that_never_answers_the_handshake_times_out(silent: SilentServer) -> None:
    handler = Handler()
    with connection(silent.url, handler, connect_timeout=0.3) as conn:
        assert wait_for(lambda: conn.last_error is not None, 5)
        assert conn.last_error == f"handshake timed out after 0.3s at {silent.url}"
    assert handler.connected == 0


def test_a_trickling_handshake_hits_the_one_deadline_not_a_per_read_timeout() -> None:
    # A byte every 50 ms would satisfy any per-read timeout; the whole answer takes > 6 s.
    server = TricklingServer(interval=0.05)
    try:
        handler = Handler()
        with connection(server.url, handler, connect_timeout=0.5) as conn:
            assert wait_for(lambda: conn.last_error is not None, 10)
            assert conn.last_error == f"handshake timed out after 0.5s at {server.url}"
            server.stop()
        assert server.finished.wait(5)
        assert 0 < server.sent < server.response_length  # hung up before the answer was in
        assert handler.connected == 0
    finally:
        server.stop()


# -- a feed's status -------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "failures.duckdb") as s:
        yield s


def test_feed_status_carries_the_connection_error_and_no_symbol_subscribed(
    store: Store, sim: SimServer
) -> None:
    url = f"ws://127.0.0.1:{sim.port}"
    feed = Feed("sim", [SYM], store.writer, ws_url=url, rest_url=sim.rest_url).start()
    try:
        assert wait_for(lambda: feed.status().connection_error is not None, 5)
        status = feed.status()
    finally:
        feed.stop()
    assert status.connection_error == status.last_error == f"HTTP 404 on upgrade at {url}"
    assert status.subscribed == {SYM: False} and status.subscribed_once == []
    assert status.unsubscribed() == [SYM]
    assert f"never subscribed: {SYM}; connection: HTTP 404 on upgrade at {url}" in (
        status.summary()
    )


def test_feed_status_says_subscribed_once_the_venue_acknowledges(
    store: Store, sim: SimServer
) -> None:
    feed = Feed("sim", [SYM], store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url).start()
    try:
        assert wait_for(lambda: feed.status().subscribed == {SYM: True}, 10)
        status = feed.status()
    finally:
        feed.stop()
    assert status.subscribed_once == [SYM] and status.rejected == {}
    assert status.connection_error is None and status.unsubscribed() == []
    assert "never subscribed" not in feed.status().summary()  # after stop: it was, once


def test_a_refused_subscription_is_in_the_status_and_the_reply_in_quarantine(
    store: Store, sim: SimServer
) -> None:
    feed = Feed("sim", ["XYZ-USD"], store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url)
    feed.start()
    try:
        assert wait_for(lambda: "XYZ-USD" in feed.status().rejected, 10)
        status = feed.status()
    finally:
        feed.stop()
    reason = "venue error reply: unknown symbols: XYZ-USD (available: BTC-USD)"
    assert status.rejected == {"XYZ-USD": reason}
    assert status.last_error == f"subscription rejected (XYZ-USD): {reason}"
    assert status.subscribed == {"XYZ-USD": False} and status.quarantined == 1
    assert f"never subscribed: XYZ-USD (rejected: {reason})" in status.summary()


def test_the_feed_status_widget_shows_the_same_error_state(tmp_path: Path, sim: SimServer) -> None:
    wb = Workbench.open(tmp_path / "widget.duckdb")
    try:
        url = f"ws://127.0.0.1:{sim.port}"
        wrong = wb.start_feed("sim", [SYM], ws_url=url, rest_url=sim.rest_url, name="wrong")
        refused = wb.start_feed(
            "sim", ["XYZ-USD"], ws_url=sim.ws_url, rest_url=sim.rest_url, name="refused"
        )
        good = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url, name="good")
        assert wait_for(
            lambda: (
                wrong.status().connection_error is not None
                and refused.status().rejected
                and good.status().subscribed == {SYM: True}
            ),
            10,
        )
        widget = FeedStatusWidget(wb, autostart=False)
        try:
            widget._render()
            html = widget.table.value
        finally:
            widget.close()
    finally:
        wb.close()
    rows = html.split("<tr>")
    wrong_row = next(r for r in rows if "<td>wrong</td>" in r)
    assert f"{SYM} waiting" in wrong_row and f"HTTP 404 on upgrade at {url}" in wrong_row
    refused_row = next(r for r in rows if "<td>refused</td>" in r)
    assert "XYZ-USD REJECTED" in refused_row and "unknown symbols: XYZ-USD" in refused_row
    good_row = next(r for r in rows if "<td>good</td>" in r)
    assert "wb-sub-ok" in good_row and "waiting" not in good_row


# -- workbench record ------------------------------------------------------------------------
def record(
    tmp_path: Path, venue: str, symbols: list[str], ws_url: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "record",
            venue,
            *symbols,
            "--db",
            str(tmp_path / "rec.duckdb"),
            "--ws-url",
            ws_url,
            "--rest-url",
            "http://127.0.0.1:1",
            "--no-backfill",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )


def stored_rows(done: subprocess.CompletedProcess[str]) -> str:
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("rows: ")]
    return line


def test_record_at_a_wrong_path_exits_3_naming_http_404_once_while_retrying(
    tmp_path: Path, sim: SimServer
) -> None:
    url = f"ws://127.0.0.1:{sim.port}"
    done = record(tmp_path, "sim", [SYM], url, "--connect-timeout", "2", "--duration", "60")
    assert done.returncode == EXIT_NOT_SUBSCRIBED, done.stderr
    error = f"HTTP 404 on upgrade at {url}"
    lines = done.stderr.splitlines()
    assert lines.count(f"workbench record: sim:{SYM}: {error} (retrying)") == 1  # not a flood
    assert re.fullmatch(
        rf"workbench record: never subscribed to {SYM} \(sim\) within 2\.\ds: {re.escape(error)}",
        lines[-1],
    )
    assert "trades=0" in stored_rows(done)


def test_record_at_a_refused_port_exits_3_naming_the_errno(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws"
    done = record(tmp_path, "sim", [SYM], url, "--connect-timeout", "1", "--duration", "60")
    assert done.returncode == EXIT_NOT_SUBSCRIBED, done.stderr
    error = f"connect failed: {REFUSED} at {url}"
    assert f"workbench record: sim:{SYM}: {error} (retrying)" in done.stderr
    assert done.stderr.splitlines()[-1].endswith(f"s: {error}")


def test_record_against_a_server_that_never_answers_the_handshake_exits_3(
    tmp_path: Path, silent: SilentServer
) -> None:
    # --connect-timeout 2 gives each handshake 1 s: the first one has failed by the deadline.
    done = record(tmp_path, "sim", [SYM], silent.url, "--connect-timeout", "2")
    assert done.returncode == EXIT_NOT_SUBSCRIBED, done.stderr
    error = f"handshake timed out after 1s at {silent.url}"
    assert f"workbench record: sim:{SYM}: {error} (retrying)" in done.stderr
    assert done.stderr.splitlines()[-1].endswith(f"s: {error}")
    assert silent.accepted >= 1


def test_record_against_a_server_that_never_acknowledges_exits_3_at_the_end_of_duration(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    # It completes the handshake and sends data, but no {"type":"subscribed"}.
    mute = serve(servers, Script([b'{"type":"heartbeat","ts":1,"seqs":{}}']))
    done = record(tmp_path, "sim", [SYM], mute.ws_url, "--duration", "1.5")
    assert done.returncode == EXIT_NOT_SUBSCRIBED, done.stderr
    assert "(retrying)" not in done.stderr  # nothing failed: it just never said yes
    assert re.fullmatch(
        rf"workbench record: never subscribed to {SYM} \(sim\) within \d+\.\ds: connected to "
        rf"{re.escape(mute.ws_url)}, but the venue acknowledged no subscription",
        done.stderr.splitlines()[-1],
    )
    assert json.loads(mute.received[0]) == {"op": "subscribe", "symbols": [SYM]}


def test_record_of_a_refused_symbol_exits_3_with_the_venues_reason(
    tmp_path: Path, sim: SimServer
) -> None:
    done = record(tmp_path, "sim", ["XYZ-USD"], sim.ws_url, "--duration", "60")
    assert done.returncode == EXIT_NOT_SUBSCRIBED, done.stderr
    reason = "venue error reply: unknown symbols: XYZ-USD (available: BTC-USD)"
    assert f"subscription of XYZ-USD rejected: {reason}" in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"workbench record: never subscribed to XYZ-USD (sim): rejected: {reason}"
    )
    assert "quarantine=1" in stored_rows(done)


def test_record_with_one_symbol_refused_keeps_the_other_and_exits_3_naming_it(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    ack = {
        "method": "subscribe",
        "result": {"channel": "book", "depth": 25, "snapshot": True, "symbol": "BTC/USD"},
        "success": True,
        "req_id": 2,
    }
    refusal = {
        "error": "Currency pair not supported XXX/USD",
        "method": "subscribe",
        "success": False,
        "symbol": "XXX/USD",
        "req_id": 2,
    }
    server = serve(servers, Script([json.dumps(ack).encode(), json.dumps(refusal).encode()]))
    done = record(tmp_path, "kraken", ["BTC/USD", "XXX/USD"], server.ws_url, "--duration", "2")
    assert done.returncode == EXIT_NOT_SUBSCRIBED, done.stderr
    reason = "kraken rejected subscribe: Currency pair not supported XXX/USD"
    assert done.stderr.splitlines()[-1] == (
        f"workbench record: never subscribed to XXX/USD (kraken): rejected: {reason}"
    )
    assert f"never subscribed: XXX/USD (rejected: {reason})" in done.stdout


def test_record_help_documents_exit_code_3_and_names_vendor_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "record", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
    )
    text = " ".join(done.stdout.split())
    assert "3 never subscribed" in text and "--connect-timeout SECONDS" in text
    assert text.count("vendor (with --mapping)") == 1 and "sim, vendor" not in text
    assert "okx, sim, or vendor (with --mapping)" in text
