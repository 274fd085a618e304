"""The simulator over real loopback sockets: protocol, REST, faults, lifecycle, burst mode."""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import websocket

from workbench.errors import SimulatorError
from workbench.feeds.wsframe import OP_BINARY, OP_CLOSE, OP_TEXT, FrameDecoder, encode_frame
from workbench.sim import SimConfig, SimServer, command
from workbench.sim.market import Delta, Snapshot, Trade
from workbench.sim.server import (
    MAX_PAGE,
    Ping,
    Reject,
    Subscribe,
    TradeTape,
    book_fields,
    parse_client_message,
    parse_request_head,
    parse_trades_query,
    websocket_accept,
)

Json = dict[str, Any]
_STRICT = msgspec.json.Decoder(Delta | Trade | Snapshot, strict=True)


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[..., SimServer]]:
    """Simulators a test starts, stopped afterwards (no thread may outlive that: conftest)."""
    servers: list[SimServer] = []

    def start(**kwargs: Any) -> SimServer:
        server = SimServer(SimConfig(**kwargs))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def connect(sim: SimServer, timeout: float = 5.0) -> websocket.WebSocket:
    return websocket.create_connection(sim.ws_url, skip_utf8_validation=True, timeout=timeout)


def subscribe(ws: websocket.WebSocket, *symbols: str) -> None:
    ws.send(json.dumps({"op": "subscribe", "symbols": list(symbols)}))


def recv(ws: websocket.WebSocket) -> Json:
    result: Json = json.loads(ws.recv())
    return result


def recv_data(ws: websocket.WebSocket) -> Json:
    """The next message that is not a heartbeat (those come every second in between)."""
    message = recv(ws)
    while message["type"] == "heartbeat":
        message = recv(ws)
    return message


def recv_until(ws: websocket.WebSocket, kind: str) -> Json:
    for _ in range(10_000):
        message = recv(ws)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


def get(url: str) -> tuple[int, Json]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.headers["Connection"] == "close"
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wire(obj: object) -> Any:
    """``obj`` as a client sees it after JSON (tuples become lists)."""
    return json.loads(msgspec.json.encode(obj))


def ledger_lines(path: Path) -> list[Json]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


class ClientBook:
    """What a correct client keeps: a snapshot plus every delta after it, seq-checked."""

    def __init__(self, snapshot: Json) -> None:
        self.seq: int = snapshot["seq"]
        self.bids = {Decimal(p): Decimal(s) for p, s in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(s) for p, s in snapshot["asks"]}

    def apply(self, message: Json) -> None:
        assert message["seq"] == self.seq + 1, "seq increases by exactly 1"
        self.seq = message["seq"]
        if message["type"] != "delta":
            return
        for side, levels in ((self.bids, message["bids"]), (self.asks, message["asks"])):
            for p, s in levels:
                if Decimal(s) == 0:
                    del side[Decimal(p)]
                else:
                    side[Decimal(p)] = Decimal(s)

    def equals(self, book: Json) -> bool:
        other = ClientBook(book)
        return (self.seq, self.bids, self.asks) == (other.seq, other.bids, other.asks)

    def crossed(self) -> bool:
        return max(self.bids) >= min(self.asks)


def collect_frames(ws: websocket.WebSocket) -> list[tuple[int, bytes]]:
    """Every data frame until the server closes the connection (close frame or FIN)."""
    frames: list[tuple[int, bytes]] = []
    while True:
        try:
            opcode, data = ws.recv_data()
        except (websocket.WebSocketConnectionClosedException, OSError):
            return frames
        if opcode == OP_CLOSE:
            return frames
        frames.append((opcode, data))


# --- pure helpers ------------------------------------------------------------------------------


def test_client_messages_are_understood_or_rejected_with_a_reason() -> None:
    known = {"BTC-USD", "ETH-USD"}
    assert parse_client_message(b'{"op":"ping","id":7}', known) == Ping(7)
    assert parse_client_message(
        b'{"op":"subscribe","symbols":["ETH-USD","BTC-USD","ETH-USD"]}', known
    ) == Subscribe(("ETH-USD", "BTC-USD"))
    rejected = parse_client_message(b'{"op":"subscribe","symbols":["BTC-USD","XX","YY"]}', known)
    assert isinstance(rejected, Reject) and "XX, YY" in rejected.message
    for bad in (b"{", b"[1]", b'{"op":"unsubscribe"}', b'{"op":"subscribe","symbols":[]}', b"\xff"):
        assert isinstance(parse_client_message(bad, known), Reject)


def test_trades_query_defaults_and_rejections() -> None:
    assert parse_trades_query("") == (0, 1000)
    assert parse_trades_query("since_id=5&limit=10") == (5, 10)
    for bad in ("limit=0", f"limit={MAX_PAGE + 1}", "since_id=-1", "since_id=1_0", "x=1"):
        with pytest.raises(ValueError):
            parse_trades_query(bad)
    with pytest.raises(ValueError):
        parse_trades_query("limit=1&limit=2")


def test_trade_tape_pages_by_id_and_keeps_the_newest_past_its_cap() -> None:
    tape = TradeTape(cap=80)
    for i in range(1, 201):
        tape.append(Trade("X", i, 0, i, "1.00", "1.000", "buy"))
    ids = [t.trade_id for t in tape.page(0, 1000)]
    assert ids == list(range(ids[0], 201)) and len(ids) >= 80
    assert [t.trade_id for t in tape.page(150, 3)] == [151, 152, 153]
    assert tape.page(200, 10) == []


def test_request_head_and_accept_key() -> None:
    request = parse_request_head(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nX-A: 1\r\nx-a: 2")
    assert request.method == "GET" and request.target == "/ws"
    assert request.headers == {"upgrade": "websocket", "x-a": "1, 2"}
    with pytest.raises(ValueError):
        parse_request_head(b"GARBAGE\r\n")
    assert websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(
    "kwargs",
    [
        {"symbols": ()},
        {"symbols": ("BTC-USD", "BTC-USD")},
        {"symbols": ("a/b",)},
        {"rate": 0},
        {"rate": -5},
        {"gap": 1.5},
        {"malformed": -0.1},
        {"gap": 0.6, "duplicate": 0.6},
        {"drop_every": 0},
        {"duration": float("nan")},
        {"grace": -1},
        {"port": 70000},
        {"burst": 0},
        {"burst": 10, "gap": 0.1},
    ],
)
def test_impossible_configs_are_refused(kwargs: Json) -> None:
    with pytest.raises(SimulatorError):
        SimConfig(**kwargs)


# --- WebSocket protocol ------------------------------------------------------------------------


def test_subscribe_snapshot_and_deltas_track_the_true_book(
    serve: Callable[..., SimServer],
) -> None:
    sim = serve(seed=4, rate=300, duration=1.0, grace=5.0)
    ws = connect(sim)
    subscribe(ws, "BTC-USD", "ETH-USD")
    assert recv_data(ws) == {"type": "subscribed", "symbols": ["BTC-USD", "ETH-USD"]}
    books = {}
    for _ in range(2):
        snapshot = recv_data(ws)
        assert snapshot["type"] == "snapshot"
        books[snapshot["symbol"]] = ClientBook(snapshot)
    trades: list[Json] = []
    while True:
        message = recv(ws)
        if message["type"] == "heartbeat":
            assert message["seqs"] == {s: b.seq for s, b in books.items()}
            if sim.halted.is_set() and message["seqs"] == {s: sim.true_book(s).seq for s in books}:
                break
            continue
        books[message["symbol"]].apply(message)
        assert not books[message["symbol"]].crossed()
        if message["type"] == "trade":
            trades.append(message)
    for symbol, book in books.items():
        status, rest_book = get(f"{sim.rest_url}/book/{symbol}")
        assert status == 200 and book.equals(rest_book)
        assert rest_book == wire(book_fields(sim.true_book(symbol)))
        first = next(t["trade_id"] for t in trades if t["symbol"] == symbol)
        _, page = get(f"{sim.rest_url}/trades/{symbol}?since_id={first - 1}&limit={MAX_PAGE}")
        rest_trades = [{"symbol": symbol, "type": "trade", **t} for t in page["trades"]]
        assert rest_trades == [t for t in trades if t["symbol"] == symbol]
    ws.close()


def test_ping_pong_errors_and_the_connection_stays_open(serve: Callable[..., SimServer]) -> None:
    sim = serve(rate=50)
    ws = connect(sim)
    ws.send(json.dumps({"op": "ping", "id": 7}))
    pong = recv_until(ws, "pong")
    assert pong["id"] == 7 and isinstance(pong["ts"], int)
    for bad in (
        "not json",
        '{"op":"unsubscribe"}',
        '{"op":"subscribe","symbols":["BTC-USD","NOPE"]}',
    ):
        ws.send(bad)
        error = recv_until(ws, "error")
        assert isinstance(error["message"], str)
    assert "NOPE" in error["message"]
    ws.send_binary(b"\x00\x01")
    assert "binary" in recv_until(ws, "error")["message"]
    ws.ping(b"are you there")
    opcode, frame = ws.recv_data_frame(control_frame=True)
    while opcode != websocket.ABNF.OPCODE_PONG:
        opcode, frame = ws.recv_data_frame(control_frame=True)
    assert frame.data == b"are you there"
    subscribe(ws, "ETH-USD")
    assert recv_data(ws)["type"] == "subscribed"
    assert recv_data(ws)["symbol"] == "ETH-USD", "the rejected subscribe subscribed nothing"
    ws.close()


def test_a_frame_pipelined_behind_the_handshake_is_read(serve: Callable[..., SimServer]) -> None:
    sim = serve()
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(handshake + encode_frame(b'{"op":"ping","id":1}', mask=True))
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(4096)
        head, _, rest = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        assert f"Sec-WebSocket-Accept: {websocket_accept(key)}".encode() in head
        decoder = FrameDecoder()
        frames = decoder.feed(rest)
        while not frames:
            frames = decoder.feed(sock.recv(4096))
        assert frames[0][0] == OP_TEXT and json.loads(frames[0][1])["type"] == "pong"


def test_bad_upgrades_get_http_errors(serve: Callable[..., SimServer]) -> None:
    sim = serve()
    assert get(f"{sim.rest_url}/ws")[0] == 426
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")


# --- REST --------------------------------------------------------------------------------------


def test_rest_endpoints_and_their_errors(serve: Callable[..., SimServer]) -> None:
    sim = serve(symbols=("BTC-USD", "SOL-USD"))
    assert get(f"{sim.rest_url}/symbols") == (200, {"symbols": ["BTC-USD", "SOL-USD"]})
    status, book = get(f"{sim.rest_url}/book/SOL%2DUSD")
    assert status == 200 and set(book) == {"symbol", "seq", "ts", "bids", "asks", "last_trade_id"}
    for path, expected in [
        ("/book/NOPE", 404),
        ("/trades/NOPE", 404),
        ("/nothing", 404),
        ("/book/BTC-USD/extra", 404),
        ("/trades/BTC-USD?limit=0", 400),
        (f"/trades/BTC-USD?limit={MAX_PAGE + 1}", 400),
        ("/trades/BTC-USD?since_id=abc", 400),
        ("/trades/BTC-USD?cursor=3", 400),
    ]:
        status, body = get(sim.rest_url + path)
        assert (status, isinstance(body["error"], str)) == (expected, True), path
    request = urllib.request.Request(f"{sim.rest_url}/symbols", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 405


def test_trades_pages_cover_every_generated_trade(
    serve: Callable[..., SimServer], tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    sim = serve(burst=3000, symbols=("ETH-USD",), ledger=ledger)
    pages: list[Json] = []
    since = 0
    while True:
        status, body = get(f"{sim.rest_url}/trades/ETH-USD?since_id={since}&limit=97")
        assert status == 200 and body["symbol"] == "ETH-USD" and len(body["trades"]) <= 97
        if not body["trades"]:
            break
        pages += body["trades"]
        since = body["trades"][-1]["trade_id"]
    sim.stop()
    expected = [
        {k: v for k, v in line.items() if k not in ("kind", "symbol")}
        for line in ledger_lines(ledger)
        if line["kind"] == "trade"
    ]
    assert pages == expected and len(pages) > 100
    first = pages[0]["trade_id"]
    assert [t["trade_id"] for t in pages] == list(range(first, first + len(pages)))


# --- faults ------------------------------------------------------------------------------------


def test_message_faults_hit_one_connection_and_match_the_ledger(
    serve: Callable[..., SimServer], tmp_path: Path
) -> None:
    ledger = tmp_path / "faults.jsonl"
    sim = serve(
        seed=12,
        symbols=("BTC-USD",),
        rate=400,
        malformed=0.08,
        gap=0.08,
        duplicate=0.08,
        crossed=0.08,
        duration=1.5,
        grace=0.3,
        ledger=ledger,
    )
    sockets = [connect(sim), connect(sim)]  # conn 1 and conn 2, in accept order
    for ws in sockets:
        subscribe(ws, "BTC-USD")
    streams: dict[int, list[tuple[int, bytes]]] = {}
    readers = [
        threading.Thread(target=lambda n=n, ws=ws: streams.__setitem__(n, collect_frames(ws)))
        for n, ws in enumerate(sockets, start=1)
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(30)
    sim.stop()
    faults = [line for line in ledger_lines(ledger) if line["kind"] not in ("trade", "book")]
    kinds = Counter(line["kind"] for line in faults)
    assert {"malformed", "gap", "duplicate", "crossed"} <= set(kinds), kinds
    final_seq = next(line["seq"] for line in ledger_lines(ledger) if line["kind"] == "book")

    for conn in (1, 2):
        mine = {line["seq"]: line for line in faults if line["conn"] == conn}
        valid: dict[int, list[bytes]] = {}
        garbage: list[tuple[int, bytes]] = []
        start = None
        for opcode, data in streams[conn]:
            if opcode == OP_TEXT and data.startswith((b'{"type":"heartbeat"', b'{"type":"sub')):
                continue
            try:
                message = _STRICT.decode(data) if opcode == OP_TEXT else None
            except (msgspec.DecodeError, UnicodeDecodeError):
                message = None
            if message is None:
                garbage.append((opcode, data))
            elif isinstance(message, Snapshot):
                book = ClientBook(wire(message))
                start = message.seq
            else:
                valid.setdefault(message.seq, []).append(data)
                if message.seq == book.seq + 1:
                    book.apply(json.loads(data))
                    fault = mine.get(message.seq)
                    if fault is not None and fault["kind"] == "crossed":
                        assert book.crossed()
                        side = book.bids if fault["side"] == "bid" else book.asks
                        del side[Decimal(fault["price"])]
                    assert not book.crossed()
        assert start is not None
        for seq in range(start + 1, final_seq + 1):
            fault = mine.get(seq, {"kind": None})
            if fault["kind"] in ("gap", "malformed"):
                assert seq not in valid, "the faulty connection never sees this seq"
            elif fault["kind"] == "duplicate":
                assert len(valid[seq]) == 2 and valid[seq][0] == valid[seq][1]
            else:
                assert len(valid[seq]) == 1, f"seq {seq} on conn {conn}"
            if fault["kind"] == "crossed":
                level = [fault["price"], fault["size"]]
                assert (
                    level in json.loads(valid[seq][0])["bids" if fault["side"] == "bid" else "asks"]
                )
        malformed = [line for line in mine.values() if line["kind"] == "malformed"]
        assert len(garbage) == len(malformed)
        sizes = sorted(len(data) for _, data in garbage)
        assert sizes == sorted(line["bytes"] for line in malformed)
        assert all(line["variant"] for line in malformed)


def test_drop_every_closes_connections_round_robin_without_a_close_frame(
    serve: Callable[..., SimServer], tmp_path: Path
) -> None:
    ledger = tmp_path / "drops.jsonl"
    sim = serve(rate=100, drop_every=0.4, ledger=ledger)
    sockets = [connect(sim), connect(sim)]
    for ws in sockets:
        subscribe(ws, "BTC-USD")
    for ws in sockets:
        assert recv_data(ws)["type"] == "subscribed"
        book = ClientBook(recv_data(ws))
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:
                opcode, data = ws.recv_data()
                assert opcode != OP_CLOSE, "a drop is a TCP close, not a WebSocket close"
                message = json.loads(data)
                if message["type"] != "heartbeat":
                    book.apply(message)
        ws.close()
    sim.stop()
    drops = [line for line in ledger_lines(ledger) if line["kind"] == "drop"]
    assert [line["conn"] for line in drops] == [1, 2]


def test_stall_goes_silent_until_the_client_hangs_up(
    serve: Callable[..., SimServer], tmp_path: Path
) -> None:
    ledger = tmp_path / "stall.jsonl"
    sim = serve(rate=100, stall_every=0.3, ledger=ledger)
    ws = connect(sim, timeout=1.6)  # longer than a heartbeat period: silence means a stall
    subscribe(ws, "BTC-USD")
    received = 0
    with pytest.raises(websocket.WebSocketTimeoutException):
        while True:
            ws.recv()
            received += 1
    assert received > 2
    ws.send(json.dumps({"op": "ping", "id": 1}))
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    wait_for(lambda: any(line["kind"] == "stall" for line in ledger_lines(ledger)))
    assert [line["conn"] for line in ledger_lines(ledger) if line["kind"] == "stall"] == [1]
    assert ws.sock is not None
    ws.sock.close()  # hang up at TCP level: a close handshake would wait for a silent server
    wait_for(lambda: not any(t.name.startswith("sim-conn1-") for t in threading.enumerate()))
    other = connect(sim)
    subscribe(other, "ETH-USD")
    assert recv_data(other)["type"] == "subscribed"
    other.close()


# --- lifecycle ---------------------------------------------------------------------------------


def test_duration_halts_trading_writes_books_then_grace_ends_it(
    serve: Callable[..., SimServer], tmp_path: Path
) -> None:
    ledger = tmp_path / "halt.jsonl"
    sim = serve(rate=200, duration=0.4, grace=3.0, ledger=ledger)
    ws = connect(sim)
    subscribe(ws, "BTC-USD")
    assert sim.halted.wait(10)
    books = [line for line in ledger_lines(ledger) if line["kind"] == "book"]
    assert [b["symbol"] for b in books] == ["BTC-USD", "ETH-USD"]
    for line in books:
        true_book = wire(book_fields(sim.true_book(line["symbol"])))
        assert {"kind": "book", **true_book} == line
        assert get(f"{sim.rest_url}/book/{line['symbol']}") == (200, true_book)
    beat = recv_until(ws, "heartbeat")
    while not beat["seqs"] or beat["seqs"]["BTC-USD"] != books[0]["seq"]:
        beat = recv_until(ws, "heartbeat")
    assert recv_until(ws, "heartbeat")["seqs"] == {"BTC-USD": books[0]["seq"]}, "beats go on"
    assert sim.wait_closed(10)
    opcode, frame = ws.recv_data_frame()
    while opcode != OP_CLOSE:
        opcode, frame = ws.recv_data_frame()
    assert int.from_bytes(frame.data[:2], "big") == 1001
    trades = [line for line in ledger_lines(ledger) if line["kind"] == "trade"]
    assert set(trades[0]) == {"kind", "symbol", "trade_id", "price", "size", "side", "ts", "seq"}
    ws.close()


def test_stop_closes_everything_and_joins_every_thread() -> None:
    before = set(threading.enumerate())
    sim = SimServer(SimConfig(rate=100))
    sim.start()
    busy = connect(sim)
    subscribe(busy, "BTC-USD", "ETH-USD")
    idle = connect(sim)
    silent_tcp = socket.create_connection(("127.0.0.1", sim.port))
    assert get(f"{sim.rest_url}/symbols")[0] == 200
    recv_until(busy, "delta")
    assert len(set(threading.enumerate()) - before) >= 6
    sim.stop()
    assert set(threading.enumerate()) - before == set()
    assert sim.lingering == [] and sim.thread_errors == 0
    assert sim.wait_closed(0)
    for ws in (busy, idle):
        ws.close()
    silent_tcp.close()


def test_burst_delivers_exactly_n_messages_in_seq_order(serve: Callable[..., SimServer]) -> None:
    n = 5000
    sim = serve(burst=n, seed=3)
    both = connect(sim)
    subscribe(both, "BTC-USD", "ETH-USD")
    assert recv_data(both)["type"] == "subscribed"
    books = {}
    for _ in range(2):
        snapshot = recv_data(both)
        books[snapshot["symbol"]] = ClientBook(snapshot)
    opening = {s: b.seq for s, b in books.items()}
    for _ in range(n):
        message = recv_data(both)
        books[message["symbol"]].apply(message)
    beat = recv_until(both, "heartbeat")
    assert beat["seqs"] == {s: b.seq for s, b in books.items()}, "nothing beyond the N messages"
    assert sum(b.seq - opening[s] for s, b in books.items()) == n
    for symbol, book in books.items():
        assert book.equals(get(f"{sim.rest_url}/book/{symbol}")[1])

    eth_only = connect(sim)
    subscribe(eth_only, "ETH-USD")
    assert recv_data(eth_only)["symbols"] == ["ETH-USD"]
    book = ClientBook(recv_data(eth_only))
    while book.seq < books["ETH-USD"].seq:
        message = recv_data(eth_only)
        assert message["symbol"] == "ETH-USD"
        book.apply(message)
    assert book.equals(get(f"{sim.rest_url}/book/ETH-USD")[1])
    both.close()
    eth_only.close()


def test_burst_counted_from_raw_bytes(serve: Callable[..., SimServer]) -> None:
    n = 20_000
    sim = serve(burst=n, symbols=("BTC-USD",))
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            + encode_frame(b'{"op":"subscribe","symbols":["BTC-USD"]}', mask=True)
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(4096)
        decoder = FrameDecoder()
        seqs: list[int] = []
        chunk = buf.partition(b"\r\n\r\n")[2]
        while len(seqs) < n:
            for opcode, payload in decoder.feed(chunk):
                assert opcode not in (OP_BINARY, OP_CLOSE)
                if payload.startswith((b'{"type":"delta"', b'{"type":"trade"')):
                    seqs.append(msgspec.json.decode(payload)["seq"])
            chunk = sock.recv(256 * 1024)
        assert seqs == list(range(seqs[0], seqs[0] + n))


def test_command_runs_until_duration_and_grace(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["sim", "--port", "0", "--duration", "0.2", "--grace", "0.2"])
    assert command.run(args) == 0
    out, err = capsys.readouterr()
    line = out.strip()
    assert err == ""
    assert line.startswith("sim listening on ws://127.0.0.1:") and "(rest http://127.0.0.1:" in line


@pytest.mark.parametrize(
    "flags",
    [["--rate", "-1"], ["--gap", "1.5"], ["--symbols", ""], ["--symbols", " , "], ["--burst", "0"]],
)
def test_command_rejects_bad_flags(flags: list[str]) -> None:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    with pytest.raises(SimulatorError):
        command.run(parser.parse_args(["sim", "--port", "0", *flags]))
