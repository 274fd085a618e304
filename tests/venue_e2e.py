"""Shared by the per-venue end-to-end tests: run `workbench record <venue>` against a
:class:`~tests.helpers.replay_server.ReplayServer` and read back what it stored.

``RefBook`` is the independent reference the stored book is compared with: a plain dict per
side, sorted on read, fed by each test's own straightforward reading of the venue's messages
(``json.loads`` and ``decimal.Decimal``), sharing no code with the venue parsers or the feed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tests.e2e import ENV, table_counts, wait_for
from tests.helpers.replay_server import ReplayServer, Script


class RefBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def reset(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def set(self, side: str, price: Any, size: Any) -> None:
        levels = self.bids if side == "bid" else self.asks
        p, s = Decimal(str(price)), Decimal(str(size))
        if s == 0:
            levels.pop(p, None)
        else:
            levels[p] = s

    def truncate(self, depth: int) -> None:
        for p in sorted(self.bids, reverse=True)[depth:]:
            del self.bids[p]
        for p in sorted(self.asks)[depth:]:
            del self.asks[p]

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return (
            [(float(p), float(s)) for p, s in bids],
            [(float(p), float(s)) for p, s in asks],
        )


def serve(
    servers: list[ReplayServer], *scripts: Script, rest: dict[str, Any] | None = None
) -> ReplayServer:
    """Start a replay server that the ``servers`` fixture (tests/conftest.py) stops."""
    server = ReplayServer(list(scripts), rest={} if rest is None else rest).start()
    servers.append(server)
    return server


def record_venue(
    venue: str,
    symbols: list[str],
    server: ReplayServer,
    db: Path,
    *args: str,
    until: Callable[[dict[str, int]], bool] = lambda committed: True,
    ws_path: str = "/ws",
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """`workbench record --progress` against the local server, ended with SIGINT once the
    server has sent everything (``settled``), the rows committed so far satisfy ``until``
    (for work the client does on its own, e.g. REST snapshots and backfills) and a ping/pong
    barrier shows every frame handled; asserts exit 0. Stopping flushes the rest, so no test
    waits longer than its scenario takes."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "record",
            venue,
            *symbols,
            "--db",
            str(db),
            "--ws-url",
            f"ws://127.0.0.1:{server.port}{ws_path}",
            "--rest-url",
            server.rest_url,
            "--progress",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    out: list[str] = []
    err: list[str] = []
    committed: dict[str, int] = {}

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("committed "):  # printed once the signal handler is in place
                committed.update(table_counts(line, "committed ", " "))

    readers = [
        threading.Thread(target=read_stdout, daemon=True),
        threading.Thread(target=lambda: err.extend(proc.stderr or ()), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        ready = wait_for(
            lambda: (
                proc.poll() is not None
                or (bool(committed) and server.settled and until(dict(committed)))
            ),
            timeout,
        )
        if not (ready and proc.poll() is None):
            if proc.poll() is None:  # its final summary (the feed's status) says why
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
            for reader in readers:
                reader.join(10)
            raise AssertionError(
                f"recorder not done with the scenario: committed {committed}, settled "
                f"{server.settled}, REST requests {server.rest_requests}\n"
                f"{''.join(out)}{''.join(err)}"
            )
        assert server.barrier(), "the recorder did not answer the barrier ping"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(10)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out), "".join(err))
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def at_least(**rows: int) -> Callable[[dict[str, int]], bool]:
    """``until`` for :func:`record_venue`: at least these committed rows per table."""
    return lambda committed: all(committed.get(t, 0) >= n for t, n in rows.items())


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def final_book(
    db: Path, exchange: str, symbol: str
) -> tuple[bool, list[tuple[float, float]], list[tuple[float, float]]]:
    """(valid, bids best-first, asks best-first) of the last stored top-N snapshot."""
    rows = query(
        db,
        """SELECT valid, side, price, size FROM book_snapshots
           WHERE exchange = ? AND symbol = ? AND recv_ts = (
               SELECT max(recv_ts) FROM book_snapshots WHERE exchange = ? AND symbol = ?)
           ORDER BY side, level""",
        [exchange, symbol, exchange, symbol],
    )
    assert rows, f"no book snapshot stored for {exchange} {symbol}"
    valid = all(r[0] for r in rows)
    bids = [(r[2], r[3]) for r in rows if r[1] == "bid"]
    asks = [(r[2], r[3]) for r in rows if r[1] == "ask"]
    return valid, bids, asks


def stored_trades(db: Path, exchange: str) -> list[tuple[str, str, float, float, str]]:
    """(symbol, trade_id, price, size, taker side) sorted by symbol and id text."""
    return [
        (r[0], r[1], r[2], r[3], r[4])
        for r in query(
            db,
            "SELECT symbol, trade_id, price, size, side FROM trades WHERE exchange = ? "
            "ORDER BY symbol, trade_id",
            [exchange],
        )
    ]


def quality_events(db: Path, exchange: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    return [
        (r[0], r[1], json.loads(r[2]))
        for r in query(
            db,
            "SELECT symbol, kind, detail FROM quality_events WHERE exchange = ? ORDER BY ts",
            [exchange],
        )
    ]


def quality_kinds(db: Path, exchange: str) -> list[str]:
    return [kind for _, kind, _ in quality_events(db, exchange)]


def quarantined(db: Path, exchange: str) -> list[tuple[str, str]]:
    """(reason, raw) of every quarantined message."""
    return [
        (r[0], r[1])
        for r in query(
            db, "SELECT reason, raw FROM quarantine WHERE exchange = ? ORDER BY recv_ts", [exchange]
        )
    ]


REST_SYNCED = at_least(quality_events=1)
"""``until`` for a book that starts from a REST snapshot: its ``resync`` event is committed."""
