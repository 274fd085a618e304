"""End to end: simulator burst → loopback WebSocket → parse → book → DuckDB, with zero loss.

The simulator runs in its own process (``workbench sim --burst N``) so it never competes for
our GIL; it pushes pre-built frames far faster than any client reads them. We time from the
first byte to the moment the writer has committed every row, then check that nothing was
lost: every trade of the burst is stored once and the final book equals the simulator's.

Baseline, same run, smaller N: the tutorial pipeline — websocket-client ``recv()`` with its
defaults, ``json.loads``, a book that sorts after every update, one INSERT per row.
Targets: ≥ 80,000 msgs/s (stretch 120,000) and ≥ 60x the baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket
from bench_book import SortingBook
from common import line, naive_store, report, start_sim, stop_sim

from workbench.workbench import Workbench

N = 600_000
BASELINE_N = 15_000
SYMBOLS = "BTC-USD,ETH-USD"


def burst_sim(burst: int, ledger: Path) -> tuple[subprocess.Popen[str], int]:
    flags = ("--seed", "3", "--symbols", SYMBOLS, "--burst", str(burst), "--ledger", str(ledger))
    return start_sim(*flags)


def ours(tmp: Path) -> tuple[float, bool]:
    ledger = tmp / "ledger.jsonl"
    proc, port = burst_sim(N, ledger)
    try:
        truth = {}
        for symbol in SYMBOLS.split(","):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/book/{symbol}") as r:
                truth[symbol] = json.loads(r.read())
        wb = Workbench.open(tmp / "ours.duckdb")
        feed = wb.start_feed(
            "sim",
            SYMBOLS.split(","),
            ws_url=f"ws://127.0.0.1:{port}/ws",
            rest_url=f"http://127.0.0.1:{port}",
            backfill=False,
        )
        while feed.messages == 0:
            time.sleep(0.001)
        start = time.perf_counter()
        while any(feed.book(s).seq != t["seq"] for s, t in truth.items()):
            time.sleep(0.002)
        wb.flush(timeout=60)
        elapsed = time.perf_counter() - start
        feed.stop()
        wb.flush()
        status = feed.status()
        trades = {tid for (tid,) in wb.sql("SELECT trade_id FROM trades").itertuples(index=False)}
        lines = ledger.read_text().splitlines()
        expected = {str(json.loads(x)["trade_id"]) for x in lines if '"kind":"trade"' in x}
        books_ok = True
        for symbol, true_book in truth.items():
            book = feed.book(symbol)
            books_ok &= book.bids() == [(float(p), float(q)) for p, q in true_book["bids"]]
            books_ok &= book.asks() == [(float(p), float(q)) for p, q in true_book["asks"]]
        wb.close()
        lossless = trades == expected and status.gaps == 0 and status.quarantined == 0 and books_ok
        return N / elapsed, lossless
    finally:
        stop_sim(proc)


def baseline(tmp: Path) -> float:
    proc, port = burst_sim(BASELINE_N, tmp / "baseline-ledger.jsonl")
    try:
        con = naive_store(tmp / "baseline.duckdb")
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws")
        ws.send(json.dumps({"op": "subscribe", "symbols": SYMBOLS.split(",")}))
        books: dict[str, SortingBook] = {}
        seen = 0
        start = None
        while seen < BASELINE_N:
            msg = json.loads(ws.recv())
            if start is None:
                start = time.perf_counter()
            kind = msg["type"]
            if kind == "snapshot":
                books[msg["symbol"]] = SortingBook(
                    [(float(p), float(q)) for p, q in msg["bids"]],
                    [(float(p), float(q)) for p, q in msg["asks"]],
                )
            elif kind == "delta":
                seen += 1
                book = books[msg["symbol"]]
                for side, levels in (("bid", msg["bids"]), ("ask", msg["asks"])):
                    for p, q in levels:
                        book.update(side == "bid", float(p), float(q))
                        con.execute(
                            "INSERT INTO book_deltas VALUES (?, ?, ?, ?, ?, ?)",
                            [msg["symbol"], msg["ts"], msg["seq"], side, float(p), float(q)],
                        )
            elif kind == "trade":
                seen += 1
                con.execute(
                    "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        msg["symbol"],
                        msg["ts"],
                        float(msg["price"]),
                        float(msg["size"]),
                        msg["side"],
                        msg["trade_id"],
                    ],
                )
        assert start is not None
        elapsed = time.perf_counter() - start
        ws.close()
        con.close()
        return BASELINE_N / elapsed
    finally:
        stop_sim(proc)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rate, lossless = ours(Path(tmp))
        base = baseline(Path(tmp))
    line(
        "end-to-end loopback WebSocket → DuckDB",
        rate,
        "msgs/s",
        baseline=base,
        target=">= 80,000 msgs/s and >= 60x",
    )
    print(f"zero loss (trades == ledger, books == simulator, no gaps): {lossless}", flush=True)
    report(
        "e2e",
        {
            "msgs_per_sec": rate,
            "baseline_msgs_per_sec": base,
            "ratio": rate / base,
            "messages": N,
            "baseline_messages": BASELINE_N,
            "lossless": lossless,
        },
    )
    if not lossless:
        sys.exit(1)


if __name__ == "__main__":
    main()
