"""Shared by the per-venue end-to-end tests: run `workbench record <venue>` against a
:class:`~tests.helpers.replay_server.ReplayServer` and read back what it stored.

``RefBook`` is the independent reference the stored book is compared with: a plain dict per
side, sorted on read, fed by each test's own straightforward reading of the venue's messages
(``json.loads`` and ``decimal.Decimal``), sharing no code with the venue parsers or the feed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tests.e2e import ENV
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
    duration: float = 3.0,
    ws_path: str = "/ws",
) -> subprocess.CompletedProcess[str]:
    """`workbench record` against the local server until ``duration`` ends; asserts exit 0."""
    done = subprocess.run(
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
            "--duration",
            str(duration),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60 + duration,
        env=ENV,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


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
