"""The simulator's I/O shell: one 127.0.0.1 port speaking WebSocket (``/ws``) and REST.

The market engine and fault decisions are pure (``market.py``, ``faults.py``); this module
adds sockets, threads and the wall clock. Threads, never asyncio, so the simulator can run
inside a notebook kernel or a test without touching anyone's event loop:

- an **acceptor** that hands each TCP connection to a session thread;
- a **session** thread per connection that reads the HTTP request: REST gets one JSON reply
  and ``Connection: close``; ``GET /ws`` with ``Upgrade`` becomes a WebSocket connection and
  the same thread stays on as its **reader** (subscribe, ping, close, WS ping → pong);
- a **sender** per WebSocket connection draining an outbound queue, coalescing whatever is
  queued into one ``sendall`` and adding a heartbeat every second;
- one **clock** thread that steps the market at the configured rate, fans messages out with
  their faults, fires drop/stall turns, flushes the ledger and runs the duration/grace end.

Consistency rule: the clock publishes and a subscribe takes its snapshot under the same
lock, and both enqueue onto the connection's queue inside it, so a snapshot with seq S is
followed on that connection by exactly the messages S+1, S+2, … (minus injected faults).
A heartbeat is built by the sender from the seqs it has already put on the wire (or
skipped, for a gap), so ``heartbeat.seqs`` never runs ahead of the stream it follows.

Supervision (``workbench.threads``): an exception that escapes a thread is logged with its
traceback and counted (:attr:`SimServer.thread_errors`). The acceptor restarts (until it gives
up); a session or sender ends its connection (the client sees a disconnect, as from a real
venue); the clock cannot resume a market it left mid-step, so the simulator fails
(:attr:`SimServer.failure`) and closes every connection. :meth:`SimServer.stop` closes every
socket, joins every thread with one deadline and names the ones still alive
(:attr:`SimServer.lingering`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import itertools
import math
import re
import socket
import threading
import time
from array import array
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from workbench.errors import SimulatorError
from workbench.feeds.wsframe import (
    OP_BINARY,
    OP_CLOSE,
    OP_OVERSIZED,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PREFIX,
    FrameDecoder,
    encode_frame,
)
from workbench.sim.faults import Fault, FaultInjector, FaultRates, next_in_turn
from workbench.sim.market import Delta, Market, Message, Snapshot, Trade
from workbench.threads import ErrorCallback, SupervisedThread, ThreadError, join_all

HOST: Final = "127.0.0.1"
HEARTBEAT_PERIOD: Final = 1.0
STALL_LIMIT: Final = 30.0
"""A stalled connection is closed by the server after this long if the client never gives up."""
LINGER: Final = 2.0
"""After our FIN, wait this long for the client's before closing: closing a socket with unread
input sends RST, and an RST can destroy data the client has not read yet."""
TRADE_CAP: Final = 100_000
"""REST ``/trades`` keeps at least the newest this many trades per symbol, in memory (~300
bytes each): two minutes of a symbol at 5,000 msgs/s, hours at the default rate, more than any
backfill after an outage asks for. (2,000,000 grew the server ~0.5 MB/s for 40 minutes.)"""
DEFAULT_PAGE: Final = 1000
MAX_PAGE: Final = 5000
MAX_CLIENT_MESSAGE: Final = 64 * 1024
MAX_REQUEST_HEAD: Final = 16 * 1024
REQUEST_TIMEOUT: Final = 5.0
CLOCK_TICK: Final = 0.01
LEDGER_FLUSH: Final = 0.1
BURST_CHUNK_FRAMES: Final = 4096
"""Frames per ``sendall`` in burst mode: about 1 MiB, large enough to amortise the syscall."""
MAX_RATE: Final = 1_000_000.0
WS_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_REASONS: Final = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
}


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ``workbench sim`` can be told; validated on construction.

    Rates (``malformed``, ``gap``, ``duplicate``, ``crossed``) are per-message probabilities
    summing to at most 1; ``rate`` is messages per second per symbol; times are seconds.
    ``port=0`` binds an ephemeral port (read it back from :attr:`SimServer.port`).
    """

    port: int = 0
    seed: int = 0
    symbols: tuple[str, ...] = ("BTC-USD", "ETH-USD")
    rate: float = 50.0
    drop_every: float | None = None
    stall_every: float | None = None
    malformed: float = 0.0
    gap: float = 0.0
    duplicate: float = 0.0
    crossed: float = 0.0
    ledger: Path | None = None
    duration: float | None = None
    grace: float = 5.0
    burst: int | None = None

    def __post_init__(self) -> None:
        problem = _config_problem(self)
        if problem is not None:
            raise SimulatorError(problem)

    @property
    def fault_rates(self) -> FaultRates:
        return FaultRates(self.malformed, self.gap, self.duplicate, self.crossed)


def _config_problem(cfg: SimConfig) -> str | None:
    if not 0 <= cfg.port <= 65535:
        return f"port must be within 0..65535 (0 = any free port), got {cfg.port}"
    if not cfg.symbols:
        return "symbols must name at least one symbol, e.g. BTC-USD"
    for symbol in cfg.symbols:
        if not _SYMBOL.fullmatch(symbol):
            return f"bad symbol {symbol!r}: use 1-32 letters, digits, '.', '_' or '-'"
    if len(set(cfg.symbols)) != len(cfg.symbols):
        return f"symbols are listed twice: {', '.join(cfg.symbols)}"
    if not (math.isfinite(cfg.rate) and 0 < cfg.rate <= MAX_RATE):
        return f"rate must be above 0 and at most {MAX_RATE:.0f} msgs/s, got {cfg.rate}"
    for name in ("drop_every", "stall_every", "duration"):
        value = getattr(cfg, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"{name} must be a positive number of seconds, got {value}"
    if not (math.isfinite(cfg.grace) and cfg.grace >= 0):
        return f"grace must be zero or more seconds, got {cfg.grace}"
    for name, rate in zip(FaultRates._fields, cfg.fault_rates, strict=True):
        if not (math.isfinite(rate) and 0 <= rate <= 1):
            return f"{name} is a probability per message and must be within 0..1, got {rate}"
    if sum(cfg.fault_rates) > 1:
        return "malformed + gap + duplicate + crossed must not exceed 1 (one fault per message)"
    if cfg.burst is not None:
        if cfg.burst < 1:
            return f"burst must be at least 1 message, got {cfg.burst}"
        if any(cfg.fault_rates):
            return (
                "burst mode sends the same pre-built frames to everyone, so it cannot be "
                "combined with malformed, gap, duplicate or crossed"
            )
    return None


# --- pure helpers: client messages, HTTP requests, REST parameters ----------------------------


class Subscribe(NamedTuple):
    symbols: tuple[str, ...]


class Ping(NamedTuple):
    id: object


class Reject(NamedTuple):
    """A client message the server answers with ``{"type":"error"}``; the connection stays."""

    message: str


def parse_client_message(payload: bytes, symbols: Collection[str]) -> Subscribe | Ping | Reject:
    """What a client text frame asks for; anything unusable becomes a :class:`Reject`.

    A subscribe naming any unknown symbol is rejected as a whole (nothing is subscribed), so
    a typo cannot leave a client half-subscribed without noticing.
    """
    try:
        obj = msgspec.json.decode(payload)
    except ValueError as exc:
        return Reject(f"not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return Reject('expected a JSON object such as {"op":"subscribe","symbols":["BTC-USD"]}')
    op = obj.get("op")
    if op == "ping":
        return Ping(obj.get("id"))
    if op != "subscribe":
        return Reject(f"unknown op {op!r}: expected subscribe or ping")
    wanted = obj.get("symbols")
    if not isinstance(wanted, list) or not wanted or not all(isinstance(s, str) for s in wanted):
        return Reject("subscribe needs symbols: a non-empty list of symbol names")
    unknown = [s for s in wanted if s not in symbols]
    if unknown:
        return Reject(
            f"unknown symbols: {', '.join(unknown)} (available: {', '.join(sorted(symbols))})"
        )
    return Subscribe(tuple(dict.fromkeys(wanted)))


class Request(NamedTuple):
    method: str
    target: str
    headers: dict[str, str]
    """Lower-cased names; repeated headers joined with ``", "``."""


def parse_request_head(head: bytes) -> Request:
    """The request line and headers of an HTTP/1.x request; ``ValueError`` if malformed."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError(f"bad request line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"bad header line {line!r}")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return Request(parts[0], parts[1], headers)


def websocket_accept(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def handshake_problem(request: Request) -> tuple[int, str] | None:
    """Why a ``/ws`` request cannot be upgraded, as ``(HTTP status, message)``, or ``None``."""
    headers = request.headers
    if request.method != "GET":
        return 405, "the WebSocket endpoint needs GET"
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in tokens:
        return 426, "this is the WebSocket endpoint: send Upgrade: websocket"
    if headers.get("sec-websocket-version") != "13":
        return 426, "only WebSocket version 13 is supported"
    try:
        key_ok = len(base64.b64decode(headers.get("sec-websocket-key", ""), validate=True)) == 16
    except ValueError:
        key_ok = False
    if not key_ok:
        return 400, "Sec-WebSocket-Key must be 16 bytes, base64-encoded"
    return None


def parse_trades_query(query: str) -> tuple[int, int]:
    """``(since_id, limit)`` from a ``/trades`` query string; ``ValueError`` says what is wrong."""
    values = {"since_id": 0, "limit": DEFAULT_PAGE}
    seen: set[str] = set()
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in values:
            raise ValueError(f"unknown parameter {key!r}: use since_id and limit")
        if key in seen:
            raise ValueError(f"parameter {key} given twice")
        seen.add(key)
        if not (value.isascii() and value.isdigit()):
            raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
        values[key] = int(value)
    if not 1 <= values["limit"] <= MAX_PAGE:
        raise ValueError(f"limit must be within 1..{MAX_PAGE}, got {values['limit']}")
    return values["since_id"], values["limit"]


class TradeTape:
    """One symbol's trades for ``/trades`` paging, oldest dropped in blocks past ``cap``.

    Trade ids are consecutive from ``first_id``, so a page is a list slice found by
    arithmetic. Trimming in blocks of ``cap // 8`` keeps appends O(1) amortised; at least
    ``cap`` trades remain.
    """

    def __init__(self, cap: int = TRADE_CAP, *, first_id: int = 1) -> None:
        self.cap = cap
        self._trades: list[Trade] = []
        self._first_id = first_id

    def append(self, trade: Trade) -> None:
        self._trades.append(trade)
        excess = len(self._trades) - self.cap
        if excess > self.cap // 8:
            del self._trades[:excess]
            self._first_id += excess

    def page(self, since_id: int, limit: int) -> list[Trade]:
        start = max(0, since_id + 1 - self._first_id)
        return self._trades[start : start + limit]


def book_fields(snapshot: Snapshot) -> dict[str, object]:
    """A snapshot as REST and the ledger show it: the snapshot's fields without ``type``."""
    return {
        "symbol": snapshot.symbol,
        "seq": snapshot.seq,
        "ts": snapshot.ts,
        "bids": snapshot.bids,
        "asks": snapshot.asks,
        "last_trade_id": snapshot.last_trade_id,
    }


def _trade_fields(trade: Trade) -> dict[str, object]:
    return {
        "trade_id": trade.trade_id,
        "price": trade.price,
        "size": trade.size,
        "side": trade.side,
        "ts": trade.ts,
        "seq": trade.seq,
    }


def _http_response(status: int, body: object, extra: str = "") -> bytes:
    payload = msgspec.json.encode(body)
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"{extra}"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload


def _text_frame(obj: object) -> bytes:
    return encode_frame(msgspec.json.encode(obj))


def _wall_us() -> int:
    return time.time_ns() // 1000


# --- the ledger --------------------------------------------------------------------------------


class _Ledger:
    """JSONL truth for tests: lines are buffered by any thread, written by flush()."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._lines: list[bytes] = []
        self._file: IO[bytes] | None = None
        if path is not None:
            try:
                self._file = open(path, "wb")  # noqa: SIM115 - open for the server's lifetime
            except OSError as exc:
                raise SimulatorError(f"cannot open ledger {path}: {exc}") from exc

    def write(self, record: dict[str, object]) -> None:
        if self._file is None:
            return
        line = msgspec.json.encode(record) + b"\n"
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._lock:
            if self._file is None or not self._lines:
                return
            self._file.write(b"".join(self._lines))
            self._lines = []
            self._file.flush()

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


# --- burst mode --------------------------------------------------------------------------------


class _BurstStream:
    """The N pre-encoded frames every burst subscriber receives, built once at start-up."""

    def __init__(
        self, symbols: Sequence[str], opening: Sequence[Snapshot], messages: Sequence[Message]
    ) -> None:
        self.symbols = tuple(symbols)
        self.opening_frames = {s.symbol: _text_frame(s) for s in opening}
        self.opening_seqs = {s.symbol: s.seq for s in opening}
        index = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.frames = [_text_frame(m) for m in messages]
        self._symbol_of = array("H", [index[m.symbol] for m in messages])
        self._seq_of = array("q", [m.seq for m in messages])

    def order(self, symbols: Collection[str]) -> Sequence[int]:
        """Indices of the frames for ``symbols``: all of them as a ``range`` when possible."""
        if set(symbols) >= set(self.symbols):
            return range(len(self.frames))
        wanted = {self.symbols.index(s) for s in symbols}
        return [i for i, s in enumerate(self._symbol_of) if s in wanted]

    def chunks(self, order: Sequence[int]) -> Iterator[tuple[bytes, int]]:
        """``(bytes, end)``: about 1 MiB of whole frames and how far into ``order`` they reach."""
        frames = self.frames
        for start in range(0, len(order), BURST_CHUNK_FRAMES):
            end = min(start + BURST_CHUNK_FRAMES, len(order))
            if isinstance(order, range):
                yield b"".join(frames[start:end]), end
            else:
                yield b"".join([frames[i] for i in order[start:end]]), end

    def seqs_at(self, order: Sequence[int], end: int, symbols: Collection[str]) -> dict[str, int]:
        """Each symbol's seq after the first ``end`` frames of ``order`` (for heartbeats)."""
        seqs = {s: self.opening_seqs[s] for s in symbols}
        missing = {self.symbols.index(s) for s in symbols}
        i = end - 1
        while missing and i >= 0:
            k = order[i]
            s = self._symbol_of[k]
            if s in missing:
                missing.discard(s)
                seqs[self.symbols[s]] = self._seq_of[k]
            i -= 1
        return seqs


# --- connections -------------------------------------------------------------------------------


class _Out(NamedTuple):
    """Frame bytes to send; ``symbol``/``seq`` advance the heartbeat; ``fault`` is logged once sent.

    A gap is an ``_Out`` with no bytes: nothing is sent but its seq is consumed.
    """

    data: bytes
    symbol: str | None = None
    seq: int = 0
    fault: dict[str, object] | None = None


class _Burst(NamedTuple):
    stream: _BurstStream
    symbols: tuple[str, ...]


class _Hangup(NamedTuple):
    """Send what is queued before this, then FIN (no close frame unless one was queued).

    Queued behind a running burst it waits for the burst to finish, like any other item.
    """

    record: dict[str, object] | None


class _Stall(NamedTuple):
    record: dict[str, object]


_Item = _Out | _Burst | _Hangup | _Stall


class _Conn:
    """One WebSocket connection: an outbound queue and the sender thread that drains it.

    ``leaving`` (set under the server lock) takes the connection out of fan-out, turns and
    replies once a drop, stall or close is under way; ``closing`` tells the sender to stop.
    """

    def __init__(
        self, number: int, sock: socket.socket, ledger: _Ledger, on_error: ErrorCallback
    ) -> None:
        self.number = number
        self.sock = sock
        self.ledger = ledger
        self.subscriptions: set[str] = set()
        self.leaving = False
        self.closing = False
        self._cond = threading.Condition()
        self._queue: list[_Item] = []
        self.sender = SupervisedThread(
            self._send_loop, name=f"sim-conn{number}-sender", restart=False, on_error=on_error
        )

    def put(self, *items: _Item) -> None:
        with self._cond:
            if not self.closing:
                self._queue.extend(items)
                self._cond.notify()

    def abort(self) -> None:
        """Stop the sender and wake the reader; safe from any thread, any number of times."""
        with self._cond:
            self.closing = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _send_loop(self) -> None:
        seqs: dict[str, int] = {}
        next_beat = time.monotonic() + HEARTBEAT_PERIOD
        try:
            while True:
                with self._cond:
                    while not self._queue and not self.closing:
                        wait = next_beat - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    if self.closing:
                        return
                    items, self._queue = self._queue, []
                out: list[bytes] = []
                records: list[dict[str, object]] = []
                for item in items:
                    if isinstance(item, _Out):
                        out.append(item.data)
                        if item.symbol is not None:
                            seqs[item.symbol] = item.seq
                        if item.fault is not None:
                            records.append(item.fault)
                        continue
                    self._write(out, records)
                    out, records = [], []
                    if isinstance(item, _Burst):
                        next_beat = self._send_burst(item, seqs, next_beat)
                    elif isinstance(item, _Stall):
                        self._stall(item.record)
                        return
                    else:
                        self._hang_up(item.record, seqs)
                        return
                if time.monotonic() >= next_beat:
                    out.append(_text_frame({"type": "heartbeat", "ts": _wall_us(), "seqs": seqs}))
                    next_beat = time.monotonic() + HEARTBEAT_PERIOD
                self._write(out, records)
        except OSError:
            pass  # the peer is gone; the reader sees it too
        finally:
            self.abort()

    def _write(self, out: list[bytes], records: list[dict[str, object]]) -> None:
        if out:
            self.sock.sendall(b"".join(out))
        for record in records:
            self.ledger.write({**record, "ts": _wall_us()})

    def _send_burst(self, burst: _Burst, seqs: dict[str, int], next_beat: float) -> float:
        """Stream the pre-built frames, with heartbeats between chunks when one is due."""
        stream = burst.stream
        order = stream.order(burst.symbols)
        for chunk, end in stream.chunks(order):
            if self.closing:
                break
            self.sock.sendall(chunk)
            if time.monotonic() >= next_beat:
                seqs.update(stream.seqs_at(order, end, burst.symbols))
                beat = {"type": "heartbeat", "ts": _wall_us(), "seqs": seqs}
                self.sock.sendall(_text_frame(beat))
                next_beat = time.monotonic() + HEARTBEAT_PERIOD
        else:
            seqs.update(stream.seqs_at(order, len(order), burst.symbols))
        return next_beat

    def _stall(self, record: dict[str, object]) -> None:
        """Go silent (no data, no heartbeats) until the client hangs up or STALL_LIMIT passes."""
        self.ledger.write({**record, "ts": _wall_us()})
        deadline = time.monotonic() + STALL_LIMIT
        with self._cond:
            while not self.closing and time.monotonic() < deadline:
                self._queue = []
                self._cond.wait(deadline - time.monotonic())
            if self.closing:
                return
        self._hang_up(None)

    def _hang_up(
        self, record: dict[str, object] | None, seqs: dict[str, int] | None = None
    ) -> None:
        """FIN after everything sent so far, then wait for the client's FIN (see ``LINGER``).

        A drop's ledger line names each symbol's last seq this connection sent or skipped
        (``last_seqs``): a gap that was the last one cannot be seen by its client."""
        self.sock.shutdown(socket.SHUT_WR)
        if record is not None:
            extra = {} if seqs is None else {"last_seqs": dict(seqs)}
            self.ledger.write({**record, **extra, "ts": _wall_us()})
        with self._cond:
            self._cond.wait_for(lambda: self.closing, LINGER)


# --- the server --------------------------------------------------------------------------------


class SimServer:
    """The embedded exchange simulator: ``start()`` serves in background threads.

    Use as a context manager in tests (``with SimServer(cfg) as sim: ...``) or call
    :meth:`start` and :meth:`stop`. After ``duration`` the market halts (:attr:`halted` is
    set, book lines go to the ledger), heartbeats and REST go on for ``grace`` seconds, then
    every connection is closed and :meth:`wait_closed` returns True; :meth:`stop` still
    joins the threads. REST ``/trades`` serves from memory: at least the newest
    ``TRADE_CAP`` (100,000) trades per symbol are kept, older ones are dropped.
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._halted = threading.Event()
        self._finished = threading.Event()
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._ledger = _Ledger(None)
        started = _wall_us()
        # Trade ids count on from the start time (×1000: room for 1000 trades per µs), so a
        # session recorded into a database that holds an earlier session reuses no id.
        first_trade_id = started * 1000
        self._market = Market(config.seed, config.symbols, started, first_trade_id=first_trade_id)
        self._injector = FaultInjector(config.seed, config.fault_rates)
        self._tapes = {symbol: TradeTape(first_id=first_trade_id + 1) for symbol in config.symbols}
        self._subscribers: dict[str, list[_Conn]] = {s: [] for s in config.symbols}
        self._burst: _BurstStream | None = None
        self._last_ts = 0
        self._conn_count = 0
        self._turns = {"drop": 0, "stall": 0}
        self._conns: dict[int, _Conn] = {}
        self._sessions: dict[threading.Thread, socket.socket] = {}
        self._session_ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self.thread_errors = 0
        """Exceptions that escaped one of the server's threads (each logged with its traceback)."""
        self.last_thread_error: str | None = None
        self.failure: str | None = None
        """Why the simulator stopped serving on its own (its clock thread failed), else None."""
        self.lingering: list[str] = []
        """Threads still alive when :meth:`stop` stopped waiting for them."""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> int:
        """Bind, build (burst frames, if any) and serve in the background; returns the port."""
        if self._port is not None:
            raise SimulatorError("this simulator was already started")
        cfg = self.config
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((HOST, cfg.port))
            listener.listen(128)
        except OSError as exc:
            listener.close()
            raise SimulatorError(f"cannot listen on {HOST}:{cfg.port}: {exc}") from exc
        try:
            self._ledger = _Ledger(cfg.ledger)
            if cfg.burst is not None:
                self._build_burst(cfg.burst)
        except BaseException:
            listener.close()
            self._ledger.close()
            raise
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._threads = [
            SupervisedThread(
                self._accept_loop,
                name="sim-acceptor",
                restart=True,
                on_error=self._core_failed,
                stop=self._stopping,
            ),
            SupervisedThread(
                self._clock_loop, name="sim-clock", restart=False, on_error=self._core_failed
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self._port

    def stop(self, timeout: float = 1.0) -> None:
        """Close every socket and join every thread the server started, sessions and their
        senders included, within ``timeout``; survivors are logged and kept in
        :attr:`lingering`."""
        with self._lock:
            self._stopping.set()
            sessions = dict(self._sessions)
            conns = list(self._conns.values())
        self._close_listener()
        for sock in sessions.values():
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for conn in conns:
            conn.abort()
        threads = [*self._threads, *sessions, *(conn.sender for conn in conns)]
        self.lingering = join_all(threads, timeout, owner="simulator")
        self._ledger.close()
        self._finished.set()

    def _thread_failed(self, error: ThreadError) -> None:
        with self._lock:
            self.thread_errors += 1
            self.last_thread_error = str(error)

    def _core_failed(self, error: ThreadError) -> None:
        """The clock (never restarted) or the acceptor (once it gives up) failed: the
        simulator cannot serve on, so it says why and closes every connection."""
        self._thread_failed(error)
        if error.action == "fail" and not self._stopping.is_set():
            self.failure = str(error)
            self._finish()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until duration + grace ran out (or :meth:`stop` was called); False on timeout."""
        return self._finished.wait(timeout)

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- public state -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise SimulatorError("the simulator is not started")
        return self._port

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def halted(self) -> threading.Event:
        """Set once ``duration`` has elapsed, order flow has stopped for good and the final
        books are in the ledger."""
        return self._halted

    def true_book(self, symbol: str) -> Snapshot:
        """The engine's book right now, as a snapshot (what a correct client must converge to)."""
        if symbol not in self._tapes:
            raise SimulatorError(f"unknown symbol {symbol!r}")
        with self._lock:
            return self._market.snapshot(symbol)

    # -- market, faults, turns ----------------------------------------------------------------

    def _now_us(self) -> int:
        """Wall-clock µs, never going backwards between messages (called under the lock)."""
        self._last_ts = max(self._last_ts, _wall_us())
        return self._last_ts

    def _build_burst(self, count: int) -> None:
        market = self._market
        opening = [market.snapshot(symbol) for symbol in market.symbols]
        messages = market.generate(count, self._now_us())
        for message in messages:
            if isinstance(message, Trade):
                self._record_trade(message)
        self._burst = _BurstStream(market.symbols, opening, messages)

    def _record_trade(self, trade: Trade) -> None:
        self._tapes[trade.symbol].append(trade)
        self._ledger.write({"kind": "trade", "symbol": trade.symbol, **_trade_fields(trade)})

    def _clock_loop(self) -> None:
        cfg = self.config
        start = time.monotonic()
        produced = dict.fromkeys(cfg.symbols, 0)
        max_batch = max(1, int(cfg.rate / 4))
        next_drop = start + cfg.drop_every if cfg.drop_every else math.inf
        next_stall = start + cfg.stall_every if cfg.stall_every else math.inf
        halt_at = start + cfg.duration if cfg.duration else math.inf
        end_at = math.inf
        next_flush = start + LEDGER_FLUSH
        while not self._stopping.wait(CLOCK_TICK):
            now = time.monotonic()
            if now >= end_at:
                self._finish()
                break
            if now >= halt_at:
                self._halt()
                halt_at = next_drop = next_stall = math.inf
                end_at = now + cfg.grace
            if self._burst is None and not self._halted.is_set():
                self._trade(int((now - start) * cfg.rate), produced, max_batch)
            if now >= next_drop:
                self._take_turn("drop")
                next_drop += cfg.drop_every or math.inf
            if now >= next_stall:
                self._take_turn("stall")
                next_stall += cfg.stall_every or math.inf
            if now >= next_flush:
                self._ledger.flush()
                next_flush = now + LEDGER_FLUSH
        self._ledger.flush()

    def _trade(self, due: int, produced: dict[str, int], max_batch: int) -> None:
        """Step each symbol until it has produced ``due`` messages, interleaving symbols."""
        budget = {s: min(due - n, max_batch) for s, n in produced.items()}
        with self._lock:
            ts = self._now_us()
            while any(b > 0 for b in budget.values()):
                for symbol, left in budget.items():
                    if left > 0:
                        messages = self._market.step(symbol, ts)
                        budget[symbol] -= len(messages)
                        produced[symbol] += len(messages)
                        self._publish(messages)

    def _publish(self, messages: list[Message]) -> None:
        """Fan messages out to their subscribers, one fault at most per message (under lock)."""
        injector = self._injector
        for message in messages:
            if isinstance(message, Trade):
                self._record_trade(message)
            conns = self._subscribers[message.symbol]
            if not conns:
                continue
            frame = _text_frame(message)
            fault = None
            if injector.enabled:
                fault = injector.decide(message, [c.number for c in conns])
            plain = _Out(frame, message.symbol, message.seq)
            for conn in conns:
                if fault is not None and conn.number == fault.conn:
                    conn.put(self._faulty(message, frame, fault))
                else:
                    conn.put(plain)

    def _faulty(self, message: Message, frame: bytes, fault: Fault) -> _Out:
        record: dict[str, object] = {
            "kind": fault.kind,
            "conn": fault.conn,
            "symbol": message.symbol,
            "seq": message.seq,
        }
        if fault.kind == "gap":
            return _Out(b"", message.symbol, message.seq, record)
        if fault.kind == "duplicate":
            return _Out(frame + frame, message.symbol, message.seq, record)
        if fault.kind == "crossed" and isinstance(message, Delta):
            best_bid, best_ask, tick = self._market.top(message.symbol)
            crossed, level = self._injector.cross(message, best_bid, best_ask, tick)
            record.update(side=level.side, price=level.price, size=level.size)
            return _Out(_text_frame(crossed), message.symbol, message.seq, record)
        assert fault.variant is not None, "a malformed fault always names its variant"
        opcode, payload = self._injector.garble(fault.variant, message)
        raw = payload[:PREFIX].decode("utf-8", "backslashreplace")
        record.update(variant=fault.variant, bytes=len(payload), raw=raw)
        return _Out(encode_frame(payload, opcode), message.symbol, message.seq, record)

    def _take_turn(self, kind: str) -> None:
        """Drop or stall the next open, subscribed connection in round-robin order."""
        with self._lock:
            eligible = {c.number: c for conns in self._subscribers.values() for c in conns}
            if not eligible:
                return
            number = next_in_turn(sorted(eligible), self._turns[kind])
            self._turns[kind] = number
            conn = eligible[number]
            self._detach(conn)
            record: dict[str, object] = {"kind": kind, "conn": number, "symbol": None, "seq": None}
            conn.put(_Hangup(record) if kind == "drop" else _Stall(record))

    def _detach(self, conn: _Conn) -> None:
        """Take ``conn`` out of fan-out and turns for good (called under the lock)."""
        conn.leaving = True
        for symbol in conn.subscriptions:
            self._subscribers[symbol].remove(conn)
        conn.subscriptions.clear()

    def _halt(self) -> None:
        # Only this (the market) thread trades, so the books stay final while they are
        # written; ``halted`` is set last, so whoever waits on it finds them in the ledger.
        with self._lock:
            books = [self._market.snapshot(symbol) for symbol in self._market.symbols]
        for book in books:
            self._ledger.write({"kind": "book", **book_fields(book)})
        self._ledger.flush()
        self._halted.set()

    def _finish(self) -> None:
        """Grace is over: close every connection with 1001 "going away" and stop accepting."""
        self._close_listener()
        goodbye = encode_frame(b"\x03\xe9simulator finished", OP_CLOSE)
        with self._lock:
            for conn in self._conns.values():
                if not conn.leaving:
                    self._detach(conn)
                    conn.put(_Out(goodbye), _Hangup(None))
        self._finished.set()

    # -- sockets ------------------------------------------------------------------------------

    def _close_listener(self) -> None:
        listener = self._listener
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        listener.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set() and not self._finished.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                if self._listener.fileno() < 0:
                    return
                self._stopping.wait(0.05)  # e.g. out of file descriptors: retry shortly
                continue
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                name = f"sim-session-{next(self._session_ids)}"
                thread = SupervisedThread(
                    functools.partial(self._session, sock),
                    name=name,
                    restart=False,
                    on_error=self._thread_failed,
                )
                self._sessions[thread] = sock
                # started under the lock: stop() must never find a session it cannot join
                thread.start()

    def _session(self, sock: socket.socket) -> None:
        try:
            self._serve(sock)
        except OSError:
            pass  # the client went away mid-request
        finally:
            with self._lock:
                self._sessions.pop(threading.current_thread(), None)
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(REQUEST_TIMEOUT)
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_REQUEST_HEAD:
                sock.sendall(_http_response(400, {"error": "request head too large"}))
                return
            chunk = sock.recv(4096)
            if not chunk:
                return
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        try:
            request = parse_request_head(head)
        except ValueError as exc:
            sock.sendall(_http_response(400, {"error": str(exc)}))
            return
        if urlsplit(request.target).path == "/ws":
            problem = handshake_problem(request)
            if problem is not None:
                status, message = problem
                extra = "Sec-WebSocket-Version: 13\r\n" if status == 426 else ""
                sock.sendall(_http_response(status, {"error": message}, extra))
                return
            self._serve_websocket(sock, request, rest)
            return
        status, body = self._rest(request)
        sock.sendall(_http_response(status, body))
        sock.shutdown(socket.SHUT_WR)

    def _rest(self, request: Request) -> tuple[int, object]:
        if request.method != "GET":
            return 405, {"error": f"{request.method} is not supported: use GET"}
        parts = urlsplit(request.target)
        if parts.path == "/symbols":
            return 200, {"symbols": list(self._market.symbols)}
        segments = parts.path.split("/")
        if len(segments) != 3 or segments[1] not in ("book", "trades"):
            hint = "try /symbols, /book/SYMBOL or /trades/SYMBOL"
            return 404, {"error": f"no such endpoint {parts.path}: {hint}"}
        symbol = unquote(segments[2])
        if symbol not in self._tapes:
            return 404, {"error": f"unknown symbol {symbol!r}"}
        if segments[1] == "book":
            with self._lock:
                return 200, book_fields(self._market.snapshot(symbol))
        try:
            since_id, limit = parse_trades_query(parts.query)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        with self._lock:
            page = self._tapes[symbol].page(since_id, limit)
        return 200, {"symbol": symbol, "trades": [_trade_fields(t) for t in page]}

    def _serve_websocket(self, sock: socket.socket, request: Request, rest: bytes) -> None:
        """Complete the handshake, then read frames until the client goes away."""
        accept = websocket_accept(request.headers["sec-websocket-key"])
        with self._lock:
            if self._finished.is_set() or self._stopping.is_set():
                return
            self._conn_count += 1
            conn = _Conn(self._conn_count, sock, self._ledger, self._thread_failed)
            self._conns[conn.number] = conn
        sock.settimeout(None)
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        conn.sender.start()
        decoder = FrameDecoder(MAX_CLIENT_MESSAGE)
        data = rest
        try:
            while True:
                for opcode, payload in decoder.feed(data):
                    self._on_frame(conn, opcode, payload)
                if decoder.error is not None and not conn.leaving:
                    self._close_with(conn, 1002, decoder.error)
                data = sock.recv(65536)
                if not data:
                    break
        except OSError:
            pass
        finally:
            with self._lock:
                self._detach(conn)
                del self._conns[conn.number]
            conn.abort()
            join_all([conn.sender], LINGER + 1.0, owner=f"simulator connection {conn.number}")

    def _on_frame(self, conn: _Conn, opcode: int, payload: bytes) -> None:
        if conn.leaving:
            return  # dropped, stalled or closing: the client gets no more replies
        if opcode == OP_TEXT:
            request = parse_client_message(payload, self._tapes)
            if isinstance(request, Subscribe):
                self._subscribe(conn, request.symbols)
            elif isinstance(request, Ping):
                conn.put(_Out(_text_frame({"type": "pong", "id": request.id, "ts": _wall_us()})))
            else:
                conn.put(_Out(_text_frame({"type": "error", "message": request.message})))
        elif opcode == OP_PING:
            conn.put(_Out(encode_frame(payload, OP_PONG)))
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            self._close_with(conn, code, "")
        elif opcode == OP_BINARY:
            message = "binary frames are not understood: send JSON text"
            conn.put(_Out(_text_frame({"type": "error", "message": message})))
        elif opcode == OP_OVERSIZED:
            message = f"message larger than {MAX_CLIENT_MESSAGE} bytes ignored"
            conn.put(_Out(_text_frame({"type": "error", "message": message})))

    def _close_with(self, conn: _Conn, code: int | None, reason: str) -> None:
        """Answer or start the closing handshake: close frame, then FIN once it is sent."""
        body = b"" if code is None else code.to_bytes(2, "big") + reason.encode()[:120]
        with self._lock:
            self._detach(conn)
            conn.put(_Out(encode_frame(body, OP_CLOSE)), _Hangup(None))

    def _subscribe(self, conn: _Conn, symbols: tuple[str, ...]) -> None:
        """Reply, snapshot and register under the lock, so no live message slips between."""
        with self._lock:
            if conn.leaving:
                return
            items: list[_Item] = [_Out(_text_frame({"type": "subscribed", "symbols": symbols}))]
            burst = self._burst
            if burst is not None:
                items += [_Out(burst.opening_frames[s], s, burst.opening_seqs[s]) for s in symbols]
                items.append(_Burst(burst, symbols))
            else:
                for symbol in symbols:
                    snapshot = self._market.snapshot(symbol)
                    items.append(_Out(_text_frame(snapshot), symbol, snapshot.seq))
            conn.put(*items)
            for symbol in symbols:
                if symbol not in conn.subscriptions:
                    conn.subscriptions.add(symbol)
                    subscribers = self._subscribers[symbol]
                    subscribers.append(conn)
                    subscribers.sort(key=lambda c: c.number)
