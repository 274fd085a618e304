"""One WebSocket connection on its own thread: connect, subscribe, receive, keep alive, reconnect.

websocket-client does the opening handshake and every send (subscribe, heartbeats, pongs).
Receiving bypasses its per-frame reader: the thread reads the socket in 256 KiB chunks and
:class:`~workbench.feeds.wsframe.FrameDecoder` splits them, so a chunk of a thousand small
messages costs one syscall and reaches the handler as one list (see wsframe's docstring for
the numbers). UTF-8 is never validated in Python: msgspec validates while it parses.

The socket is opened by us and handed to websocket-client, so ``stop()`` can shut it down
from another thread at any point, even mid-handshake, and the thread exits within the
0.2 s receive timeout.

Failing loudly and politely:

- The opening handshake (TCP connect, TLS, HTTP upgrade) has ONE deadline,
  ``connect_timeout`` after the attempt began: websocket-client reads the upgrade response a
  byte at a time, so a per-read timeout would let a server trickling a byte a second hold the
  thread indefinitely. :class:`_Deadline` gives every read only the time left.
- ``last_error`` says what ended the latest attempt in words an operator can act on, with
  the URL and the HTTP status or errno ("HTTP 404 on upgrade at ws://…", "connection
  refused (errno 111) at ws://…"); it is cleared once a session is subscribed again.
- The backoff starts over only after a session was HEALTHY: its subscription acknowledged
  (the handler calls :meth:`Connection.mark_subscribed`) and data still arriving
  ``healthy_after`` seconds later. Merely receiving bytes proves nothing: a server that
  accepts, answers "rate limited" and hangs up must meet a growing wait, not a storm.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import websocket

from workbench.clock import WALL
from workbench.core.clock import Clock
from workbench.feeds.wsframe import (
    OP_BINARY,
    OP_CLOSE,
    OP_OVERSIZED,
    OP_PING,
    OP_TEXT,
    FrameDecoder,
)
from workbench.threads import ErrorCallback, SupervisedThread

RECV_CHUNK = 256 * 1024
POLL_INTERVAL = 0.2
HEALTHY_AFTER = 30.0
"""Seconds a subscribed session must keep receiving before the backoff starts over."""


class ConnectionHandler(Protocol):
    """What a connection reports to the feed that owns it (called on the connection thread)."""

    def on_connected(self, conn: int) -> list[str]:
        """Returns the subscribe messages to send."""

    def on_messages(self, conn: int, payloads: list[bytes], recv_ts: int) -> None: ...

    def on_oversized(self, conn: int, prefix: bytes, recv_ts: int) -> None: ...

    def on_disconnected(self, conn: int, reason: str, *, stale: bool) -> None: ...


class Backoff:
    """Exponential backoff with jitter: base·2^n capped, each wait drawn from [½, 1] of it."""

    def __init__(self, base: float = 0.1, cap: float = 5.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        # 2.0**1024 raises OverflowError, which after an hour-long outage would end the
        # connection thread; long before that exponent the cap applies anyway.
        ceiling: float = min(self.cap, self.base * 2.0 ** min(self.attempt, 1023))
        self.attempt += 1
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self.attempt = 0


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def open_socket(url: str, deadline: float) -> socket.socket:
    """TCP (and TLS) to ``url``'s host, all done by ``deadline`` (``time.monotonic()``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"WebSocket URL must be ws(s)://host[:port]/path, got {url!r}")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    sock = socket.create_connection((parts.hostname, port), timeout=_left(deadline))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "wss":
            # The TLS handshake runs under the socket timeout as one total duration.
            sock.settimeout(_left(deadline))
            context = ssl.create_default_context()
            return context.wrap_socket(sock, server_hostname=parts.hostname)
    except BaseException:
        sock.close()
        raise
    return sock


class _Deadline:
    """The socket as websocket-client sees it: while ``deadline`` is set (during the opening
    handshake) every read and write gets only the time left until it, so the handshake as a
    whole cannot outlast it; afterwards a plain pass-through for its sends and pongs."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline: float | None = deadline

    def _arm(self) -> None:
        if self.deadline is not None:
            self.sock.settimeout(_left(self.deadline))

    def recv(self, bufsize: int) -> bytes:
        self._arm()
        return self.sock.recv(bufsize)

    def send(self, data: bytes) -> int:
        self._arm()
        return self.sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def describe_os_error(exc: OSError) -> str:
    """An OS-level failure in an operator's words, with its errno."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused (errno {exc.errno})"
    if exc.errno is not None:
        return f"{(exc.strerror or str(exc)).lower()} (errno {exc.errno})"
    return f"{type(exc).__name__}: {exc}"


class HandshakeError(Exception):
    """Why an opening handshake failed, in the words ``last_error`` shows."""


class Connection:
    """Keeps one subscription alive until ``stop()``; reports everything to ``handler``."""

    def __init__(
        self,
        conn: int,
        url: str,
        handler: ConnectionHandler,
        *,
        heartbeat: Callable[[], str | None],
        heartbeat_interval: float,
        stale_after: float,
        max_message: int = 4 * 1024 * 1024,
        connect_timeout: float = 5.0,
        healthy_after: float = HEALTHY_AFTER,
        backoff: Backoff | None = None,
        name: str = "feed",
        on_error: ErrorCallback | None = None,
        clock: Clock = WALL,
    ) -> None:
        self.conn = conn
        self.clock = clock
        """Times heartbeats, the silence watchdog, health and the backoff waits; the opening
        handshake's deadline is socket time, always real."""
        self.url = url
        self.handler = handler
        self.heartbeat = heartbeat
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.max_message = max_message
        self.connect_timeout = connect_timeout
        """Seconds the whole opening handshake of one attempt may take."""
        self.healthy_after = healthy_after
        self.backoff = backoff or Backoff()
        self.connected = False
        self.last_error: str | None = None
        """What ended the latest attempt or session, naming the URL; None once subscribed."""
        self._subscribed_at: float | None = None
        self._last_data: float | None = None
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._outbox: list[str] = []  # sent by the connection's own thread, see send()
        self._drop_reason: str | None = None
        # A bug that escapes a session (ours or the venue's) ends that session like a
        # disconnect; the supervisor reports it and runs the reconnect loop again.
        self._thread = SupervisedThread(
            self._run,
            name=f"wb-{name}-conn{conn}",
            restart=True,
            on_error=on_error,
            stop=self._stop,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish and break any blocking socket call; see ``join``."""
        self._stop.set()
        self._shutdown_socket()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def thread_name(self) -> str:
        return self._thread.name

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def send(self, messages: list[str]) -> None:
        """Queue text frames for the live session (e.g. a resubscribe); the connection's own
        thread sends them within one poll interval, so frames never interleave with its
        heartbeats. A session that ends first discards them: a new one subscribes afresh."""
        with self._sock_lock:
            self._outbox.extend(messages)

    def mark_subscribed(self) -> None:
        """The venue acknowledged this session's subscription (the handler calls this, on
        the connection's own thread): from now on the session can prove itself healthy."""
        if self._subscribed_at is None:
            # when the acknowledgement was read: the chunk that carried it
            self._subscribed_at = self._last_data or self.clock.now()
            self.last_error = None

    def drop(self, reason: str | None = None) -> None:
        """Close the current socket; the thread reconnects (used for resubscribing).
        ``reason`` replaces "closed by server" in what the handler hears."""
        self._drop_reason = reason
        self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        with self._sock_lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        while not self._stop.is_set():
            healthy = self._session()
            if self._stop.is_set():
                break
            if healthy:
                self.backoff.reset()
            self.clock.wait(self._stop, self.backoff.next_delay())

    def _session(self) -> bool:
        """One connection's life, reported to the handler; returns whether it was healthy."""
        self._subscribed_at = self._last_data = None
        deadline = time.monotonic() + self.connect_timeout
        try:
            sock = open_socket(self.url, deadline)
        except ValueError as exc:
            self.last_error = f"connect failed: {exc}"
            return False
        except OSError as exc:
            self.last_error = f"connect failed: {describe_os_error(exc)} at {self.url}"
            return False
        with self._sock_lock:
            self._sock = sock
        if self._stop.is_set():
            self._close(sock)
            return False
        try:
            ws = self._handshake(sock, deadline)
        except HandshakeError as exc:
            with self._sock_lock:
                self._sock = None
            self._close(sock)
            self._drop_reason = None  # nothing to drop: the session never began
            if not self._stop.is_set():
                self.last_error = str(exc)
            return False
        crashed: Exception | None = None
        try:
            self.connected = True
            with self._sock_lock:
                self._outbox.clear()
            for message in self.handler.on_connected(self.conn):
                ws.send(message)
            reason, stale = self._receive(ws, sock)
        except (OSError, websocket.WebSocketException) as exc:
            reason, stale = f"{type(exc).__name__}: {exc}", False
        except Exception as exc:  # a bug: the session ends as on a disconnect, then re-raised
            reason, stale, crashed = f"internal error: {type(exc).__name__}: {exc}", False, exc
        finally:
            self.connected = False
            with self._sock_lock:
                self._sock = None
            self._close(sock)
        healthy = self._was_healthy()
        if not self._stop.is_set():
            if self._drop_reason is not None:
                reason, self._drop_reason = self._drop_reason, None
            self.last_error = f"{reason} at {self.url}"
            self.handler.on_disconnected(self.conn, reason, stale=stale)
        if crashed is not None:
            raise crashed
        return healthy

    def _was_healthy(self) -> bool:
        """Subscribed, and data still arrived ``healthy_after`` seconds after that."""
        subscribed, last_data = self._subscribed_at, self._last_data
        return (
            subscribed is not None
            and last_data is not None
            and last_data - subscribed >= self.healthy_after
        )

    def _handshake(self, sock: socket.socket, deadline: float) -> websocket.WebSocket:
        """The HTTP upgrade, done by ``deadline``; failures become :class:`HandshakeError`."""
        guarded = _Deadline(sock, deadline)
        url = self.url
        try:
            ws = websocket.create_connection(
                url, socket=guarded, timeout=self.connect_timeout, skip_utf8_validation=True
            )
        except websocket.WebSocketBadStatusException as exc:
            raise HandshakeError(f"HTTP {exc.status_code} on upgrade at {url}") from None
        except (websocket.WebSocketTimeoutException, TimeoutError):
            raise HandshakeError(
                f"handshake timed out after {self.connect_timeout:g}s at {url}"
            ) from None
        except websocket.WebSocketConnectionClosedException:
            raise HandshakeError(f"connection closed during the handshake at {url}") from None
        except OSError as exc:
            raise HandshakeError(f"handshake failed: {describe_os_error(exc)} at {url}") from None
        except websocket.WebSocketException as exc:
            raise HandshakeError(f"handshake failed: {exc} at {url}") from None
        guarded.deadline = None
        return ws

    def _receive(self, ws: websocket.WebSocket, sock: socket.socket) -> tuple[str, bool]:
        decoder = FrameDecoder(self.max_message)
        handler = self.handler
        conn = self.conn
        sock.settimeout(POLL_INTERVAL)
        recv = sock.recv
        clock = self.clock.now
        time_us = self.clock.time_us
        last_data = clock()
        next_beat = last_data + self.heartbeat_interval if self.heartbeat_interval > 0 else None
        while not self._stop.is_set():
            try:
                chunk = recv(RECV_CHUNK)
            except (TimeoutError, ssl.SSLWantReadError):
                chunk = None
            now = clock()
            if chunk is not None:
                if not chunk:
                    return "closed by server", False
                last_data = self._last_data = now
                recv_ts = time_us()
                payloads: list[bytes] = []
                for opcode, payload in decoder.feed(chunk):
                    if opcode in (OP_TEXT, OP_BINARY):
                        payloads.append(payload)
                    elif opcode == OP_PING:
                        # Handle what came before the ping first, so a pong means "read
                        # and handled up to here" (a server, or a test, can wait on it).
                        if payloads:
                            handler.on_messages(conn, payloads, recv_ts)
                            payloads = []
                        ws.pong(payload)
                    elif opcode == OP_CLOSE:
                        if payloads:
                            handler.on_messages(conn, payloads, recv_ts)
                        return "close frame from server", False
                    elif opcode == OP_OVERSIZED:
                        if payloads:
                            handler.on_messages(conn, payloads, recv_ts)
                            payloads = []
                        handler.on_oversized(conn, payload, recv_ts)
                if payloads:
                    handler.on_messages(conn, payloads, recv_ts)
                if decoder.error is not None:
                    return f"framing error: {decoder.error}", False
            elif now - last_data > self.stale_after:
                return f"no data for {now - last_data:.1f}s", True
            if self._outbox:
                with self._sock_lock:
                    outgoing, self._outbox = self._outbox, []
                for text in outgoing:
                    ws.send(text)
            if next_beat is not None and now >= next_beat:
                message = self.heartbeat()
                if message is not None:
                    ws.send(message)
                next_beat = now + self.heartbeat_interval
        return "stopped", False

    @staticmethod
    def _close(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.close()
