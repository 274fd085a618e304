"""End to end on Binance Spot's own protocol: a loopback burst → the ``binance`` venue → book →
DuckDB, with zero loss, the writer's lag behind the socket and the recorder's peak memory.

Unlike ``bench_e2e.py`` (the simulator's protocol), the server here speaks Binance: combined
stream frames ``{"stream","data"}`` after a ``SUBSCRIBE`` acknowledged with
``{"result":null,"id":1}``, five ``depthUpdate`` diffs (absolute sizes, ``U``/``u`` chained,
1–4 update ids and 2–4 levels each, deletes of unknown levels included) per ``aggTrade``
(consecutive ids per symbol), and ``GET /api/v3/depth`` answering with the book as of the
200th diff, so the recorder buffers, drops the diffs the snapshot holds and applies the rest
(EXCHANGES.md's sync). Every frame is encoded before the port is announced and the burst is
written in ~1 MiB ``sendall`` calls, as fast as the client reads.

Three processes, none sharing a GIL: the server; the recorder (``Workbench.open`` +
``start_feed("binance", ...)``, what ``workbench record binance --ws-url --rest-url`` runs),
which measures its own peak RSS (``ru_maxrss`` of RUSAGE_SELF: RUSAGE_CHILDREN in this
process would also count the servers, whose pre-encoded bursts are larger); and this one,
which checks the stored rows.

- msgs/s: burst messages / (first frame read → the commit that stored the last row).
- writer lag: at each commit, the age of the oldest row that commit stored (``recv_ts`` is
  when our socket read it; the writer's ``on_commit`` hook gives the commit times and
  counts), i.e. how far behind the socket the database ever was; max over the run.
- zero loss: each symbol's aggTrade ids stored exactly once, first to last; every applied
  diff level stored; no gap, quarantine or reconnect; the final books equal the server's.

Baseline, same run, smaller N: the tutorial pipeline — websocket-client ``recv()``,
``json.loads``, the REST snapshot via urllib, a book that sorts after every update
(``bench_book.SortingBook``), one INSERT per row.
Targets: ≥ 150,000 msgs/s, writer lag ≤ 300 ms, peak RSS ≤ 200 MB.

    .venv/bin/python benchmarks/bench_binance_burst.py --n 200000
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import random
import resource
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import numpy as np
import numpy.typing as npt
import websocket
from bench_book import SortingBook
from common import line, naive_store, report

from workbench.feeds.wsframe import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, FrameDecoder, encode_frame
from workbench.workbench import Workbench

N = 1_000_000
BASELINE_N = 5_000
SEED = 7
SYMBOLS = ("BTCUSDT", "ETHUSDT")
MIDS = {"BTCUSDT": 30_000_00, "ETHUSDT": 2_000_00}  # in cents, one cent a tick
DEPTH_PER_TRADE = 5
SNAPSHOT_AFTER = 200
"""The REST book is the one after this many diffs of the symbol: the ones before it are stale."""
MIN_N = 1_000
"""Enough for each symbol to pass SNAPSHOT_AFTER diffs, so the sync drops some and applies some."""
MAX_TICKS = 200  # levels per side stay within this many ticks of the mid: never crossed
CHUNK = 1 << 20
ACK = b'{"result":null,"id":1}'
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 150.0
TARGET_RATE = 150_000
TARGET_LAG_MS = 300.0
TARGET_RSS_MB = 200.0

Level = tuple[float, float]


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}000000"


def _qty(units: int) -> str:
    """``units`` of 1e-8, Binance's eight decimals."""
    return f"{units // 100_000_000}.{units % 100_000_000:08d}"


def _levels_json(levels: list[tuple[int, int]]) -> str:
    return ",".join(f'["{_price(p)}","{_qty(q)}"]' for p, q in levels)


def _side(levels: dict[int, int], reverse: bool) -> list[list[str]]:
    return [[_price(p), _qty(q)] for p, q in sorted(levels.items(), reverse=reverse)]


def _floats(levels: dict[int, int], reverse: bool) -> list[Level]:
    return [(float(p), float(q)) for p, q in _side(levels, reverse)]


@dataclass
class Expected:
    """What a lossless recorder must end with."""

    messages: int
    trade_ids: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per symbol, the first and last aggregate trade id sent (consecutive)."""
    delta_rows: int = 0
    """Levels of the diffs newer than the REST snapshot: one ``book_deltas`` row each."""
    snapshot_rows: int = 0
    """The applied REST snapshots in ``book_deltas``: a reset row and one row per level."""
    books: dict[str, tuple[list[Level], list[Level]]] = field(default_factory=dict)

    @property
    def trades(self) -> int:
        return sum(last - first + 1 for first, last in self.trade_ids.values())


@dataclass
class Burst:
    chunks: list[bytes]
    snapshots: dict[str, bytes]
    expected: Expected


def generate(n: int, seed: int) -> Burst:
    """``n`` frames, symbols taking turns in groups of five diffs and one aggTrade."""
    rng = random.Random(seed)
    e0 = time.time_ns() // 1_000_000
    books: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    for s in SYMBOLS:
        bids = {MIDS[s] - k: rng.randint(1, 5 * 10**8) for k in range(1, 101)}
        asks = {MIDS[s] + k: rng.randint(1, 5 * 10**8) for k in range(1, 101)}
        books[s] = (bids, asks)
    last_id = dict.fromkeys(SYMBOLS, 1_000_000)
    diffs = dict.fromkeys(SYMBOLS, 0)
    next_trade = {s: 5_000_000 + 1_000_000 * i for i, s in enumerate(SYMBOLS)}
    first_trade = dict(next_trade)
    expected = Expected(n)
    snapshots: dict[str, bytes] = {}

    def snapshot(s: str) -> bytes:
        bids, asks = books[s]
        body = {"lastUpdateId": last_id[s], "bids": _side(bids, True), "asks": _side(asks, False)}
        return json.dumps(body, separators=(",", ":")).encode()

    for s in SYMBOLS:
        snapshots[s] = snapshot(s)  # replaced at SNAPSHOT_AFTER unless the burst is shorter
    frames: list[bytes] = []
    group = DEPTH_PER_TRADE + 1
    for i in range(n):
        s = SYMBOLS[(i // group) % len(SYMBOLS)]
        bids, asks = books[s]
        e = e0 + i // 100
        if i % group == DEPTH_PER_TRADE:
            sold = rng.random() < 0.5  # m: the buyer was the maker, the taker sold
            price = max(bids) if sold else min(asks)
            a = next_trade[s]
            next_trade[s] = a + 1
            payload = (
                f'{{"stream":"{s.lower()}@aggTrade","data":{{"e":"aggTrade","E":{e},'
                f'"s":"{s}","a":{a},"p":"{_price(price)}","q":"{_qty(rng.randint(1, 10**8))}",'
                f'"f":{3 * a},"l":{3 * a + 2},"T":{e},"m":{"true" if sold else "false"},'
                '"M":true}}'
            )
        else:
            changes = []
            for levels, sign in ((bids, -1), (asks, 1)):
                ticks = {min(MAX_TICKS, 1 + int(rng.expovariate(0.05))) for _ in range(2)}
                side = []
                for k in sorted(ticks):
                    p = MIDS[s] + sign * k
                    q = 0 if rng.random() < 0.25 else rng.randint(1, 5 * 10**8)
                    if q:
                        levels[p] = q
                    else:
                        levels.pop(p, None)  # deleting an unknown level is normal on Binance
                    side.append((p, q))
                changes.append(side)
            first = last_id[s] + 1
            last_id[s] = first + rng.randint(0, 3)
            diffs[s] += 1
            if diffs[s] == SNAPSHOT_AFTER:
                snapshots[s] = snapshot(s)
            elif diffs[s] > SNAPSHOT_AFTER:
                expected.delta_rows += len(changes[0]) + len(changes[1])
            payload = (
                f'{{"stream":"{s.lower()}@depth@100ms","data":{{"e":"depthUpdate","E":{e},'
                f'"s":"{s}","U":{first},"u":{last_id[s]},"b":[{_levels_json(changes[0])}],'
                f'"a":[{_levels_json(changes[1])}]}}}}'
            )
        frames.append(encode_frame(payload.encode()))
    for s in SYMBOLS:
        if next_trade[s] > first_trade[s]:
            expected.trade_ids[s] = (first_trade[s], next_trade[s] - 1)
        expected.books[s] = (_floats(books[s][0], True), _floats(books[s][1], False))
        served = json.loads(snapshots[s])
        expected.snapshot_rows += 1 + len(served["bids"]) + len(served["asks"])
    chunks, pending, size = [], [], 0
    for frame in frames:
        pending.append(frame)
        size += len(frame)
        if size >= CHUNK:
            chunks.append(b"".join(pending))
            pending, size = [], 0
    chunks.append(b"".join(pending))
    return Burst(chunks, snapshots, expected)


# -- the server process ----------------------------------------------------------------------


def _serve(n: int, info: Queue[tuple[int, Expected]], done: Event) -> None:
    burst = generate(n, SEED)
    sent = threading.Event()  # the burst goes to the first WebSocket only: a reconnect shows
    with socket.create_server(("127.0.0.1", 0)) as listener:
        info.put((listener.getsockname()[1], burst.expected))
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            args = (conn, burst, sent, done)
            threading.Thread(target=_session, args=args, daemon=True).start()


def _session(conn: socket.socket, burst: Burst, sent: threading.Event, done: Event) -> None:
    with conn:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        request, *lines = head.decode("latin-1").split("\r\n")
        target = request.split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        if headers.get("upgrade", "").lower() != "websocket":
            conn.sendall(_rest(burst, target))
            return
        key = headers["sec-websocket-key"] + GUID
        accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
        conn.sendall(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        conn.settimeout(0.2)
        decoder = FrameDecoder()
        streams = {f"{s.lower()}@{c}" for s in SYMBOLS for c in ("aggTrade", "depth@100ms")}
        chunk = rest
        while not done.is_set():
            for opcode, payload in decoder.feed(chunk):
                if opcode == OP_CLOSE:
                    return
                if opcode == OP_PING:
                    conn.sendall(encode_frame(payload, OP_PONG))
                elif opcode == OP_TEXT:
                    message = json.loads(payload)
                    if message.get("method") != "SUBSCRIBE" or set(message["params"]) != streams:
                        reply = {"error": {"code": 2, "msg": "Invalid request"}, "id": 1}
                        conn.sendall(encode_frame(json.dumps(reply).encode()))
                    elif sent.is_set():
                        return  # a second connection gets nothing: the run failed already
                    else:
                        sent.set()
                        conn.settimeout(None)  # the client may pause longer than a poll
                        conn.sendall(encode_frame(ACK))
                        for part in burst.chunks:
                            conn.sendall(part)
                        conn.settimeout(0.2)
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                chunk = b""
                continue
            if not chunk:
                return


def _rest(burst: Burst, target: str) -> bytes:
    url = urlsplit(target)
    symbol = parse_qs(url.query).get("symbol", [""])[0]
    if url.path == "/api/v3/depth" and symbol in burst.snapshots:
        status, body = "200 OK", burst.snapshots[symbol]
    else:  # backfill is never needed without a gap; a request here is a finding
        status, body = "400 Bad Request", b'{"code":-1121,"msg":"Invalid symbol."}'
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def start_server(
    n: int,
) -> tuple[multiprocessing.process.BaseProcess, int, Expected, Event]:
    ctx = multiprocessing.get_context("spawn")
    info: Queue[tuple[int, Expected]] = ctx.Queue()
    done = ctx.Event()
    proc = ctx.Process(target=_serve, args=(n, info, done))
    proc.start()
    port, expected = info.get(timeout=300)
    return proc, port, expected, done


def stop_server(proc: multiprocessing.process.BaseProcess, done: Event) -> None:
    done.set()
    proc.join(10)
    if proc.is_alive():
        proc.terminate()
        proc.join()


# -- the recorder process --------------------------------------------------------------------


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes there, KiB here


def _record(port: int, db: str, expected: Expected, out: Queue[dict[str, Any]]) -> None:
    totals = {"trades": 0, "book_deltas": 0}
    commits: list[tuple[int, int, int]] = []  # (time µs, trades, book_deltas) committed so far
    complete = threading.Event()

    def on_commit(stored: dict[str, int]) -> None:  # the writer thread, after each commit
        for table in totals:
            totals[table] += stored.get(table, 0)
        commits.append((time.time_ns() // 1000, totals["trades"], totals["book_deltas"]))
        if totals["trades"] >= expected.trades and totals["book_deltas"] >= (
            expected.delta_rows + expected.snapshot_rows
        ):
            complete.set()

    wb = Workbench.open(db, on_commit=on_commit)
    feed = wb.start_feed(
        "binance",
        list(SYMBOLS),
        ws_url=f"ws://127.0.0.1:{port}/stream",
        rest_url=f"http://127.0.0.1:{port}",
    )
    deadline = time.monotonic() + TIMEOUT
    while feed.messages == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    start = time.time_ns() // 1000
    while not complete.wait(0.5) and feed.running and time.monotonic() < deadline:
        pass
    finished = complete.is_set()
    rss = _peak_rss_mb()  # before anything but recording has run
    wb.flush(timeout=30)
    status = feed.status()
    books = {s: (feed.book(s).bids(), feed.book(s).asks()) for s in SYMBOLS}
    wb.close()
    out.put(
        {
            "finished": finished,
            "start_us": start,
            "end_us": commits[-1][0] if finished else None,
            "commits": commits,
            "rss_mb": rss,
            "status": status.summary(),
            "gaps": status.gaps,
            "quarantined": status.quarantined,
            "reconnects": status.reconnects,
            "backfilled": status.backfilled,
            "failed": status.failed,
            "books": books,
        }
    )


def max_lag_ms(recv_us: npt.NDArray[np.int64], committed: list[tuple[int, int]]) -> float:
    """The oldest row each commit stored, its age at that commit; ``recv_us`` ascending, as
    the feed hands rows over in the order its socket read them."""
    worst, before = 0, 0
    for at, total in committed:
        if total > before:
            worst = max(worst, at - int(recv_us[before]))
            before = total
    return worst / 1000


def ours(tmp: Path, n: int) -> dict[str, Any]:
    proc, port, expected, done = start_server(n)
    try:
        ctx = multiprocessing.get_context("spawn")
        out: Queue[dict[str, Any]] = ctx.Queue()
        db = tmp / "binance.duckdb"
        recorder = ctx.Process(target=_record, args=(port, str(db), expected, out))
        recorder.start()
        result = out.get(timeout=TIMEOUT + 60)
        recorder.join(30)
    finally:
        stop_server(proc, done)
    if not result["finished"]:
        raise SystemExit(f"the recorder did not store the whole burst: {result['status']}")
    with duckdb.connect(str(db), read_only=True) as con:
        trades = con.execute(
            "SELECT symbol, count(*), count(DISTINCT trade_id), min(trade_id::BIGINT),"
            " max(trade_id::BIGINT) FROM trades GROUP BY symbol"
        ).fetchall()
        delta_rows = con.execute(
            "SELECT count(*) FILTER (kind = 'delta'), count(*) FILTER (kind <> 'delta') "
            "FROM book_deltas"
        ).fetchone()
        lags = {
            table: max_lag_ms(
                con.execute(f"SELECT epoch_us(recv_ts) AS r FROM {table} ORDER BY r").fetchnumpy()[
                    "r"
                ],
                [(c[0], c[column]) for c in result["commits"]],
            )
            for table, column in (("trades", 1), ("book_deltas", 2))
        }
    stored = {s: (count, distinct, lo, hi) for s, count, distinct, lo, hi in trades}
    want = {s: (b - a + 1, b - a + 1, a, b) for s, (a, b) in expected.trade_ids.items()}
    checks = {
        "every aggTrade stored once": stored == want,
        "every diff level stored": delta_rows == (expected.delta_rows, expected.snapshot_rows),
        "books == server's": result["books"] == expected.books,
        "no gap, quarantine, reconnect or backfill": (
            result["gaps"],
            result["quarantined"],
            result["reconnects"],
            result["backfilled"],
            result["failed"],
        )
        == (0, 0, 0, 0, None),
    }
    seconds = (result["end_us"] - result["start_us"]) / 1e6
    return {
        "rate": n / seconds,
        "rows_per_sec": (expected.trades + expected.delta_rows) / seconds,
        "lags": lags,
        "rss_mb": result["rss_mb"],
        "checks": checks,
        "status": result["status"],
    }


# -- the naive baseline ----------------------------------------------------------------------


def baseline(tmp: Path, n: int) -> tuple[float, bool]:
    proc, port, expected, done = start_server(n)
    try:
        con = naive_store(tmp / "baseline.duckdb")
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/stream")
        params = [f"{s.lower()}@{c}" for s in SYMBOLS for c in ("aggTrade", "depth@100ms")]
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}))
        json.loads(ws.recv())  # the acknowledgement: the first byte
        start = time.perf_counter()
        books: dict[str, SortingBook] = {}
        last: dict[str, int] = {}
        for s in SYMBOLS:
            url = f"http://127.0.0.1:{port}/api/v3/depth?symbol={s}&limit=1000"
            with urllib.request.urlopen(url) as r:
                snap = json.loads(r.read())
            books[s] = SortingBook(
                [(float(p), float(q)) for p, q in snap["bids"]],
                [(float(p), float(q)) for p, q in snap["asks"]],
            )
            last[s] = snap["lastUpdateId"]
        trades = 0
        for _ in range(n):
            data = json.loads(ws.recv())["data"]
            s = data["s"]
            if data["e"] == "depthUpdate":
                if data["u"] <= last[s]:
                    continue
                last[s] = data["u"]
                for side, key in (("bid", "b"), ("ask", "a")):
                    for p, q in data[key]:
                        books[s].update(side == "bid", float(p), float(q))
                        con.execute(
                            "INSERT INTO book_deltas VALUES (?, ?, ?, ?, ?, ?)",
                            [s, data["E"], data["u"], side, float(p), float(q)],
                        )
            else:
                trades += 1
                side = "sell" if data["m"] else "buy"
                con.execute(
                    "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?)",
                    [s, data["T"], float(data["p"]), float(data["q"]), side, data["a"]],
                )
        elapsed = time.perf_counter() - start
        ws.close()
        con.close()
    finally:
        stop_server(proc, done)
    ok = trades == expected.trades and all(
        book.top(len(book.bids) + len(book.asks)) == expected.books[s] for s, book in books.items()
    )
    return n / elapsed, ok


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=N, help="messages in the burst")
    parser.add_argument("--baseline-n", type=int, default=BASELINE_N)
    args = parser.parse_args()
    if min(args.n, args.baseline_n) < MIN_N:
        parser.error(f"--n and --baseline-n must be at least {MIN_N:,}")
    with tempfile.TemporaryDirectory() as tmp:
        run = ours(Path(tmp), args.n)
        base, base_ok = baseline(Path(tmp), min(args.baseline_n, args.n))
    rate, rss, lags = run["rate"], run["rss_mb"], run["lags"]
    lag = max(lags.values())
    line(
        f"binance burst end to end, {args.n:,} msgs (first byte → last row committed)",
        rate,
        "msgs/s",
        baseline=base,
        target=f">= {TARGET_RATE:,} msgs/s: {_verdict(rate >= TARGET_RATE)}",
    )
    print(f"  ({run['rows_per_sec']:,.0f} trades + book_deltas rows/s committed)")
    line(
        "writer max lag behind the socket",
        lag,
        "ms",
        target=f"<= {TARGET_LAG_MS:g} ms: {_verdict(lag <= TARGET_LAG_MS)}",
    )
    print(f"  (trades {lags['trades']:,.0f} ms, book_deltas {lags['book_deltas']:,.0f} ms)")
    line(
        "peak RSS of the recording process",
        rss,
        "MB",
        target=f"<= {TARGET_RSS_MB:g} MB: {_verdict(rss <= TARGET_RSS_MB)}",
    )
    lossless = all(run["checks"].values())
    failed = [name for name, ok in run["checks"].items() if not ok]
    print(f"zero loss ({', '.join(run['checks'])}): {lossless}", flush=True)
    if failed:
        print(f"  failed: {', '.join(failed)}; {run['status']}")
    print(f"baseline stored everything and ended with the server's books: {base_ok}")
    report(
        "binance_burst",
        {
            "msgs_per_sec": rate,
            "rows_per_sec": run["rows_per_sec"],
            "baseline_msgs_per_sec": base,
            "ratio": rate / base,
            "writer_max_lag_ms": lag,
            "writer_max_lag_ms_by_table": lags,
            "peak_rss_mb": rss,
            "messages": args.n,
            "baseline_messages": min(args.baseline_n, args.n),
            "lossless": lossless,
            "baseline_lossless": base_ok,
        },
    )
    if not (lossless and base_ok):
        sys.exit(1)


if __name__ == "__main__":
    main()
