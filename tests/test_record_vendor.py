"""`workbench record vendor ... --mapping FILE` end to end, against a local replay server.

The vendor is the example HK mapping (data/vendors/hk_ticks.json) with a short heartbeat
interval so a ping happens within the run. Expected rows come from this file's own reading of
the frames (json.loads, Decimal, zoneinfo), sharing no code with the vendor parser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.replay_server import ReplayServer, Script
from tests.venue_e2e import quality_events, quarantined, query, record_venue, stored_trades

ROOT = Path(__file__).resolve().parent.parent
EXCHANGE = "hk-vendor"
HKT = ZoneInfo("Asia/Hong_Kong")
EPOCH = datetime(1970, 1, 1)
SUBSCRIBE = b'{"action":"subscribe","symbols":["0700.HK","0005.HK"]}'
PING = b'{"action":"ping"}'


@pytest.fixture
def hk_mapping(tmp_path: Path) -> Path:
    data = json.loads((ROOT / "data" / "vendors" / "hk_ticks.json").read_text())
    data["heartbeat_interval"] = 0.3  # 30 s in the example: ping within a 3 s run
    path = tmp_path / "hk.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def run(tmp_path: Path) -> Iterator[list[ReplayServer]]:
    servers: list[ReplayServer] = []
    yield servers
    for server in servers:
        server.stop()


def tick(
    sym: str, time: str, last: str, volume: str, bid: str, bsz: str, ask: str, asz: str
) -> dict[str, str]:
    return {
        "symbol": sym,
        "time": f"2026-11-21 {time}",
        "last_price": last,
        "volume": volume,
        "bid_price": bid,
        "bid_size": bsz,
        "ask_price": ask,
        "ask_size": asz,
    }


def frame(*ticks: dict[str, str]) -> bytes:
    return json.dumps({"type": "tick", "data": list(ticks)}, separators=(",", ":")).encode()


def utc(local: str) -> datetime:
    """Naive HK local time → naive UTC, as DuckDB returns TIMESTAMP columns."""
    moment = datetime.fromisoformat(local).replace(tzinfo=HKT)
    return moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def expected_quotes(frames: list[bytes]) -> list[tuple[Any, ...]]:
    rows = []
    for raw in frames:
        msg = json.loads(raw)
        for t in msg.get("data", []) if msg.get("type") == "tick" else []:
            rows.append(
                (
                    t["symbol"],
                    utc(t["time"]),
                    float(t["bid_price"]),
                    float(t["bid_size"]),
                    float(t["ask_price"]),
                    float(t["ask_size"]),
                )
            )
    return sorted(rows)


def stored_quotes(db: Path) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT symbol, ts, bid_price, bid_size, ask_price, ask_size FROM quotes "
        "WHERE exchange = ? ORDER BY symbol, ts",
        [EXCHANGE],
    )


def trade(t: dict[str, str], size: str, side: str) -> tuple[str, str, float, float, str]:
    """The expected trades row: synthesized id "{ts µs}-0", size = rise of the day volume."""
    return (t["symbol"], f"{us(utc(t['time']))}-0", float(t["last_price"]), float(size), side)


# 0700.HK opens at 385.000 / 385.200; 0005.HK at 62.35 / 62.40.
T1 = tick("0700.HK", "09:30:00.123", "385.200", "1205300", "385.000", "32000", "385.200", "18500")
T2 = tick("0005.HK", "09:30:00.200", "62.35", "880400", "62.35", "90000", "62.40", "41200")
# +400 at the ask (385.200) → taker BUY; the ask shrinks
T3 = tick("0700.HK", "09:30:00.456", "385.200", "1205700", "385.000", "32000", "385.200", "18100")
# +1000 at the bid (385.000) → taker SELL
T4 = tick("0700.HK", "09:30:01.010", "385.000", "1206700", "385.000", "31000", "385.200", "18100")
# batch: 0005 +2,400 at 62.40 (ask) → BUY; 0700 quote-only (volume unchanged) → no trade
T5 = tick("0005.HK", "09:30:01.500", "62.40", "882800", "62.35", "90000", "62.40", "38800")
T6 = tick("0700.HK", "09:30:01.500", "385.000", "1206700", "384.800", "12000", "385.000", "900")
# 0700 +300 at 384.900, inside the spread 384.800/385.000: tick rule, down from 385.000 → SELL
T7 = tick("0700.HK", "09:30:02.000", "384.900", "1207000", "384.800", "12000", "385.000", "900")
# 0005 +1,200 at 62.35 (bid) → SELL, with decimal sizes exact
T8 = tick("0005.HK", "09:30:02.250", "62.35", "884000", "62.30", "51000", "62.40", "38800")

MALFORMED = frame({**T7, "time": "2026-11-21 09:30:01.900", "last_price": "38x.9"})


def test_tick_stream_quotes_trades_heartbeat_quarantine(
    hk_mapping: Path, tmp_path: Path, run: list[ReplayServer]
) -> None:
    frames = [
        b'{"type":"subscribed","symbols":["0700.HK","0005.HK"]}',
        frame(T1),
        frame(T2),
        frame(T3),
        frame(T4),
        MALFORMED,
        frame(T5, T6),
        frame(T7),
        frame(T8),
    ]
    server = ReplayServer(
        [Script(frames, replies={PING: [b'{"type":"pong","ts":1795224603000}']})]
    ).start()
    run.append(server)
    db = tmp_path / "hk.duckdb"
    record_venue("vendor", ["0700.HK", "0005.HK"], server, db, "--mapping", str(hk_mapping))

    assert server.connections == 1
    assert server.received[0] == SUBSCRIBE
    assert PING in server.received[1:]  # the application heartbeat went out
    good = [f for f in frames if f is not MALFORMED]
    assert stored_quotes(db) == expected_quotes(good)
    assert stored_trades(db, EXCHANGE) == sorted(
        [
            trade(T3, "400", "buy"),
            trade(T4, "1000", "sell"),
            trade(T5, "2400", "buy"),
            trade(T7, "300", "sell"),
            trade(T8, "1200", "sell"),
        ]
    )
    ((reason, raw),) = quarantined(db, EXCHANGE)  # the ack and the pong are ignored
    assert reason == "Expected `float | null`, got `str` - at `$.data[0].last_price`"
    assert "38x.9" in raw
    kinds = [kind for _, kind, _ in quality_events(db, EXCHANGE)]
    assert not {"gap", "stale", "disconnect", "reconnect"} & set(kinds), kinds
    instruments = query(
        db,
        "SELECT symbol, pair, base, quote FROM instruments WHERE exchange = ? ORDER BY symbol",
        [EXCHANGE],
    )
    assert instruments == [
        ("0005.HK", "0005.HK-HKD", "0005.HK", "HKD"),
        ("0700.HK", "0700.HK-HKD", "0700.HK", "HKD"),
    ]


def test_reconnect_resubscribes_and_counts_no_trade_twice(
    hk_mapping: Path, tmp_path: Path, run: list[ReplayServer]
) -> None:
    """After a drop the vendor replays each symbol's latest tick: it only re-bases the
    cumulative volume, so no trade is recorded twice and none is invented."""
    first = [frame(T1), frame(T2), frame(T3), frame(T4)]
    second = [
        frame(T4),  # the replayed latest tick: new baseline on the new connection
        frame(T2),
        frame(T7),  # +300 against T4's volume
        frame(T8),  # +3,600 against T2's: the 0005 trades missed during the drop
    ]
    server = ReplayServer([Script(first, close_after=True), Script(second)]).start()
    run.append(server)
    db = tmp_path / "reconnect.duckdb"
    record_venue("vendor", ["0700.HK", "0005.HK"], server, db, "--mapping", str(hk_mapping))

    assert server.connections == 2
    assert [m for m in server.received if m == SUBSCRIBE] == [SUBSCRIBE, SUBSCRIBE]
    assert stored_trades(db, EXCHANGE) == sorted(
        [
            trade(T3, "400", "buy"),
            trade(T4, "1000", "sell"),
            trade(T7, "300", "sell"),
            trade(T8, str(Decimal(T8["volume"]) - Decimal(T2["volume"])), "sell"),
        ]
    )
    assert stored_quotes(db) == expected_quotes(first + second)
    kinds = [kind for _, kind, _ in quality_events(db, EXCHANGE)]
    assert "disconnect" in kinds and "reconnect" in kinds
    assert quarantined(db, EXCHANGE) == []


def ticker(sym: str, ms: int, bid: str, bsz: int, ask: str, asz: int) -> bytes:
    body = {
        "quote": {
            "symbol": sym,
            "updated_ms": str(ms),
            "bid": {"price": bid, "size": bsz},
            "ask": {"price": ask, "size": asz},
        }
    }
    return json.dumps(body).encode()


def test_polling_source_records_one_quote_per_ticker_body(
    hk_mapping: Path, tmp_path: Path, run: list[ReplayServer]
) -> None:
    ms = 1_795_224_600_000
    tencent = [
        ticker("0700.HK", ms + 100, "385.000", 32000, "385.200", 18500),
        ticker("0700.HK", ms + 1100, "385.000", 31000, "385.200", 18100),
        ticker("0700.HK", ms + 2100, "384.800", 12000, "385.000", 900),
    ]
    hsbc = [
        ticker("0005.HK", ms + 200, "62.35", 90000, "62.40", 41200),
        ticker("0005.HK", ms + 1200, "62.30", 51000, "62.40", 38800),
    ]
    bodies = {"/v2/quote?symbol=0700.HK": tencent, "/v2/quote?symbol=0005.HK": hsbc}
    server = ReplayServer([], rest={path: list(answers) for path, answers in bodies.items()})
    server.start()
    run.append(server)
    db = tmp_path / "poll.duckdb"
    record_venue(
        "vendor",
        ["0700.HK", "0005.HK"],
        server,
        db,
        "--mapping",
        str(hk_mapping),
        "--poll",
        "0.3",
        # a poll after a symbol's last body: that body was handled (one poller, in turn)
        until=lambda _: all(server.rest_requests.count(p) > len(b) for p, b in bodies.items()),
    )

    assert server.connections == 0  # polling only: no WebSocket
    assert server.rest_requests.count("/v2/quote?symbol=0700.HK") >= len(tencent)
    expected = set()
    for raw in tencent + hsbc:
        q = json.loads(raw)["quote"]
        ts = EPOCH + timedelta(milliseconds=int(q["updated_ms"]))
        bid, ask = q["bid"], q["ask"]
        expected.add(
            (q["symbol"], ts, float(bid["price"]), bid["size"], float(ask["price"]), ask["size"])
        )
    # the last body repeats once the list is used up: the same quote polled again
    assert set(stored_quotes(db)) == expected
    assert quarantined(db, EXCHANGE) == []
