"""`workbench record gemini ...` end to end, against a local replay server.

Frames follow Gemini's documented market data v2 formats. The expected book comes from this
file's own replay of the same frames (``json.loads`` + ``Decimal`` into ``RefBook``: an
``l2_updates`` carrying the ``trades`` list is a full book and resets, any other applies its
changes), sharing no code with the venue parser or the feed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.replay_server import ReplayServer, Script
from tests.venue_e2e import (
    RefBook,
    final_book,
    quality_events,
    quality_kinds,
    quarantined,
    record_venue,
    serve,
    stored_trades,
)

EXCHANGE = "gemini"
SYM = "BTCUSD"
HEARTBEAT = b'{"type":"heartbeat","timestamp":1700000001000}'
AUCTION = (
    b'{"type":"auction_result","symbol":"BTCUSD","time_ms":1700000000000,"result":"failure",'
    b'"highest_bid_price":"36241.05","lowest_ask_price":"36246.50","collar_price":"36188.07"}'
)
TRUNCATED = b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","3624'


def trade(tid: int, side: str, price: str, qty: str) -> dict[str, Any]:
    return {
        "type": "trade",
        "symbol": SYM,
        "event_id": tid * 10,
        "timestamp": 1700000000000 + tid % 1000,
        "price": price,
        "quantity": qty,
        "side": side,
        "tid": tid,
    }


def full_book(changes: list[list[str]], recent: list[dict[str, Any]]) -> bytes:
    body = {
        "type": "l2_updates",
        "symbol": SYM,
        "changes": changes,
        "trades": recent,
        "auction_events": [],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def update(*changes: list[str]) -> bytes:
    body = {"type": "l2_updates", "symbol": SYM, "changes": list(changes)}
    return json.dumps(body, separators=(",", ":")).encode()


def trade_msg(tid: int, side: str, price: str, qty: str) -> bytes:
    return json.dumps(trade(tid, side, price, qty), separators=(",", ":")).encode()


BOOK = [
    ["buy", "36240.01", "0.5"],
    ["buy", "36239.50", "1.25"],
    ["buy", "36238.00", "0.00121425"],
    ["sell", "36241.00", "0.75"],
    ["sell", "36242.50", "2"],
]


def reference(frames: list[bytes]) -> RefBook:
    ref = RefBook()
    for raw in frames:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if msg.get("type") != "l2_updates":
            continue
        if "trades" in msg:
            ref.reset()
        for side, price, qty in msg["changes"]:
            ref.set("bid" if side == "buy" else "ask", price, qty)
    return ref


def expected_trades(frames: list[bytes]) -> list[tuple[str, str, float, float, str]]:
    rows = set()
    for raw in frames:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        for t in msg.get("trades", []) + ([msg] if msg.get("type") == "trade" else []):
            rows.add(
                (t["symbol"], str(t["tid"]), float(t["price"]), float(t["quantity"]), t["side"])
            )
    return sorted(rows)


def l2_requests(server: ReplayServer) -> list[tuple[str, list[str]]]:
    out = []
    for raw in server.received:
        msg = json.loads(raw)
        for sub in msg["subscriptions"]:
            assert sub["name"] == "l2"
            out.append((msg["type"], sub["symbols"]))
    return out


def test_first_update_is_the_book_then_updates_and_taker_trades(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    frames = [
        full_book(
            BOOK,
            [
                trade(2840140800042677, "sell", "36240.01", "0.0073173"),
                trade(2840140800042601, "buy", "36241.00", "0.1"),
            ],
        ),
        update(["sell", "36241.00", "0.5"], ["buy", "36240.50", "0.3"]),
        trade_msg(2840140800042700, "buy", "36241.00", "0.25"),
        HEARTBEAT,
        update(["buy", "36239.50", "0"]),
        AUCTION,
        TRUNCATED,
        trade_msg(2840140800042711, "sell", "36240.50", "0.30000000"),
        update(["buy", "36240.50", "0"], ["sell", "36241.50", "0.00005100"]),
    ]
    server = serve(servers, Script(frames))
    db = tmp_path / "gemini.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert l2_requests(server) == [("subscribe", [SYM])]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames).top(20)
    assert asks[:2] == [(36241.0, 0.5), (36241.5, 5.1e-05)]
    stored = stored_trades(db, EXCHANGE)
    assert stored == expected_trades(frames) and len(stored) == 4
    assert sorted(t[4] for t in stored) == ["buy", "buy", "sell", "sell"]
    assert quality_kinds(db, EXCHANGE) == ["resync"]  # the initial book only
    ((reason, raw),) = quarantined(db, EXCHANGE)
    assert raw == TRUNCATED.decode() and reason


def test_a_crossed_update_resyncs_by_resubscribing_the_symbol(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    seen = trade(2840140800042677, "sell", "36240.01", "0.0073173")
    frames = [
        full_book(BOOK, [seen]),
        update(["buy", "36240.01", "0.75"]),
        update(["buy", "36241.00", "0.2"]),  # bid at the best ask: a message was lost
        update(["sell", "36243.00", "1"]),
    ]
    fresh = [
        update(["sell", "36244.00", "9"]),  # in flight before the unsubscribe took effect
        full_book(
            [["buy", "36241.50", "0.4"], ["buy", "36240.00", "1"], ["sell", "36242.00", "0.6"]],
            [trade(2840140800042690, "buy", "36242.00", "0.2"), seen],
        ),
        update(["sell", "36242.00", "0.45"], ["buy", "36241.75", "0.1"]),
        trade_msg(2840140800042695, "sell", "36241.75", "0.05"),
    ]
    server = serve(servers, Script(frames, replies={b"unsubscribe": fresh}))
    db = tmp_path / "gemini.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert l2_requests(server)[:3] == [
        ("subscribe", [SYM]),
        ("unsubscribe", [SYM]),
        ("subscribe", [SYM]),
    ]
    events = quality_events(db, EXCHANGE)
    assert [kind for _, kind, _ in events] == ["resync", "crossed", "resync"]
    crossed = events[1][2]
    assert (crossed["best_bid"], crossed["best_ask"]) == (36241.0, 36241.0)
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh).top(20)
    assert (bids, asks) == ([(36241.75, 0.1), (36241.5, 0.4), (36240.0, 1.0)], [(36242.0, 0.45)])
    assert stored_trades(db, EXCHANGE) == expected_trades(frames + fresh)  # `seen` once


def test_a_disconnect_rebuilds_the_book_and_recovers_recent_trades(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    early = trade(2840140800042601, "buy", "36241.00", "0.1")
    first = [
        full_book(BOOK, [early]),
        update(["buy", "36240.01", "0"]),
        trade_msg(2840140800042610, "sell", "36239.50", "0.5"),
    ]
    missed = trade(2840140800042620, "buy", "36242.50", "1.5")  # while disconnected
    second = [
        full_book(
            [["buy", "36239.00", "2"], ["sell", "36242.50", "0.5"], ["sell", "36243.00", "1"]],
            [missed, trade(2840140800042610, "sell", "36239.50", "0.5"), early],
        ),
        update(["buy", "36239.25", "0.125"]),
        HEARTBEAT,
    ]
    server = serve(servers, Script(first, close_after=True), Script(second))
    db = tmp_path / "gemini.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert server.connections >= 2
    seen = quality_kinds(db, EXCHANGE)
    assert {"disconnect", "reconnect"} <= set(seen) and seen.count("resync") == 2
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(first + second).top(20)
    assert (bids, asks) == ([(36239.25, 0.125), (36239.0, 2.0)], [(36242.5, 0.5), (36243.0, 1.0)])
    stored = stored_trades(db, EXCHANGE)
    assert stored == expected_trades(first + second) and len(stored) == 3
