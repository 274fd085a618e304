"""`workbench record coinbase-exchange ...` end to end, against a local replay server.

Frames follow the Coinbase Exchange feed's documented formats. The expected book comes from
this file's own replay of the same frames (``json.loads`` + ``Decimal`` into ``RefBook``: a
``snapshot`` resets the book, ``l2update`` changes apply after it, per connection), sharing no
code with the venue parser or the feed. Expected trades: every ``match``/``last_match`` and
REST trade once, with the taker side, the opposite of the maker ``side`` Coinbase sends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.replay_server import ReplayServer, Script
from tests.venue_e2e import (
    RefBook,
    at_least,
    final_book,
    quality_events,
    quality_kinds,
    quarantined,
    record_venue,
    stored_trades,
)

EXCHANGE = "coinbase-exchange"
SYM = "BTC-USD"
ACK = b'{"type":"subscriptions","channels":[{"name":"level2_batch","product_ids":["BTC-USD"]}]}'
ERROR = (
    b'{"type":"error","message":"Failed to subscribe","reason":"ETH-XYZ is not a valid product"}'
)
TAKER = {"buy": "sell", "sell": "buy"}


def snapshot(bids: list[list[str]], asks: list[list[str]]) -> bytes:
    body = {"type": "snapshot", "product_id": SYM, "bids": bids, "asks": asks}
    return json.dumps(body, separators=(",", ":")).encode()


def l2update(*changes: tuple[str, str, str]) -> bytes:
    body = {
        "type": "l2update",
        "product_id": SYM,
        "time": "2026-04-07T00:28:58.250358Z",
        "changes": [list(c) for c in changes],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def trade(trade_id: int, maker_side: str, price: str, size: str) -> dict[str, Any]:
    return {
        "time": f"2026-04-07T00:28:{trade_id % 60:02d}.{trade_id:06d}Z",
        "trade_id": trade_id,
        "price": price,
        "size": size,
        "side": maker_side,
    }


def match(row: dict[str, Any], kind: str = "match") -> bytes:
    body = {
        "type": kind,
        **row,
        "sequence": 9_000_000 + 37 * row["trade_id"],  # product-wide: jumps between matches
        "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
        "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
        "product_id": SYM,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def heartbeat(last_trade_id: int) -> bytes:
    body = {
        "type": "heartbeat",
        "sequence": 9_100_000,
        "last_trade_id": last_trade_id,
        "product_id": SYM,
        "time": "2026-04-07T00:28:59.000001Z",
    }
    return json.dumps(body, separators=(",", ":")).encode()


def reference(*connections: list[bytes]) -> RefBook:
    """Each list: the frames one connection delivered, in order."""
    ref = RefBook()
    for frames in connections:
        in_sync = False
        for raw in frames:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if msg.get("type") == "snapshot":
                ref.reset()
                in_sync = True
                for p, s in msg["bids"]:
                    ref.set("bid", p, s)
                for p, s in msg["asks"]:
                    ref.set("ask", p, s)
            elif msg.get("type") == "l2update" and in_sync:
                for side, p, s in msg["changes"]:
                    ref.set("bid" if side == "buy" else "ask", p, s)
    return ref


def expected_trades(rows: list[dict[str, Any]]) -> list[tuple[str, str, float, float, str]]:
    unique = {
        (SYM, str(r["trade_id"]), float(r["price"]), float(r["size"]), TAKER[r["side"]])
        for r in rows
    }
    return sorted(unique)


def test_records_the_book_and_converts_maker_sides_to_taker_sides(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    rows = [
        trade(100, "buy", "68923.66", "0.5"),
        trade(101, "sell", "68923.67", "0.00123858"),
        trade(102, "buy", "68923.66", "0.25"),
    ]
    frames = [
        ACK,
        snapshot(
            [["68923.66", "0.75"], ["68923.01", "1.25"]],
            [["68923.67", "0.00123858"], ["68924.94", "2"]],
        ),
        match(rows[0], "last_match"),
        l2update(("buy", "68923.66", "0.25"), ("sell", "68923.67", "0")),
        match(rows[1]),
        b"\x00 garbage \xff",
        heartbeat(101),
        match(rows[2]),
        ERROR,
        l2update(
            ("buy", "68923.66", "0"), ("buy", "68922.50", "3.1"), ("sell", "68925.00", "5E-5")
        ),
    ]
    server = ReplayServer([Script(frames)]).start()
    servers.append(server)
    db = tmp_path / "cbx.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert json.loads(server.received[0]) == {
        "type": "subscribe",
        "product_ids": [SYM],
        "channels": ["level2_batch", "matches", "heartbeat"],
    }
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames).top(20)
    assert (bids, asks) == ([(68923.01, 1.25), (68922.5, 3.1)], [(68924.94, 2.0), (68925.0, 5e-05)])
    got = stored_trades(db, EXCHANGE)
    assert got == expected_trades(rows)
    assert [(t[1], t[4]) for t in got] == [("100", "sell"), ("101", "buy"), ("102", "sell")]
    assert quality_kinds(db, EXCHANGE) == [
        "resync"
    ]  # the initial sync only: no backfill, nothing missing
    assert server.rest_requests == []
    reasons = [reason for reason, _ in quarantined(db, EXCHANGE)]
    assert len(reasons) == 2
    assert "venue error reply: Failed to subscribe: ETH-XYZ is not a valid product" in reasons


def test_trades_missed_while_disconnected_are_backfilled_once_and_the_book_rebuilt(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    history = [
        trade(i, "sell" if i % 3 else "buy", f"50.{i % 100:02d}", f"0.{i}") for i in range(90, 108)
    ]
    by_id = {r["trade_id"]: r for r in history}
    first = [
        ACK,
        snapshot([["50.00", "1"]], [["50.10", "1"]]),
        match(by_id[100], "last_match"),
        match(by_id[101]),
        l2update(("buy", "50.05", "2")),
        match(by_id[102]),
    ]
    second = [  # 103-105 happened while the connection was down
        ACK,
        snapshot([["50.20", "3"], ["50.00", "1"]], [["50.30", "2"]]),
        match(by_id[106], "last_match"),
        l2update(("buy", "50.00", "0"), ("sell", "50.40", "5")),
        match(by_id[107]),
        l2update(("buy", "50.25", "1.125")),
    ]
    # What Coinbase answers for trades with id < 1103: the newest first, older ones included.
    page = json.dumps(list(reversed(history))).encode()
    path = f"/products/{SYM}/trades?after=1103&limit=1000"
    server = ReplayServer(
        # delay: every subscribe is in before the close (unread data would turn the close into
        # a reset, and a reset discards what the client has not read yet)
        [Script(first, close_after=True, delay=0.2), Script(second)],
        rest={path: page},
    ).start()
    servers.append(server)
    db = tmp_path / "cbx.duckdb"
    # trades 100-107, 103-105 only by the backfill; the events listed below
    record_venue(EXCHANGE, [SYM], server, db, until=at_least(trades=8, quality_events=5))

    assert server.connections >= 2
    assert server.rest_requests == [path]  # fetched once
    seen = quality_kinds(db, EXCHANGE)
    assert {"disconnect", "reconnect"} <= set(seen) and seen.count("resync") == 2
    backfill = [detail for _, kind, detail in quality_events(db, EXCHANGE) if kind == "backfill"]
    assert [(b["after_id"], b["count"]) for b in backfill] == [(102, 3)]
    got = stored_trades(db, EXCHANGE)
    assert got == expected_trades([by_id[i] for i in range(100, 108)])  # each exactly once
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(first, second).top(20)
    assert (bids, asks) == ([(50.25, 1.125), (50.2, 3.0)], [(50.3, 2.0), (50.4, 5.0)])


def test_a_crossed_book_is_resynced_by_resubscribing_on_the_same_connection(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    frames = [
        ACK,
        snapshot([["100.00", "1"], ["99.99", "2"]], [["100.01", "1"], ["100.02", "3"]]),
        l2update(("buy", "100.00", "1.5")),
        l2update(("buy", "100.05", "1")),  # a bid above the best ask: an update was lost
        l2update(("sell", "100.03", "1")),  # in flight until the resubscribe takes effect
    ]
    fresh = [
        ACK,
        ACK,
        l2update(("buy", "99.00", "8")),  # the old subscription's last word: superseded
        snapshot([["100.00", "4"], ["99.97", "1"]], [["100.02", "2"], ["100.04", "1"]]),
        l2update(("buy", "99.97", "0"), ("sell", "100.03", "6")),
    ]
    server = ReplayServer([Script(frames, replies={b"unsubscribe": fresh})]).start()
    servers.append(server)
    db = tmp_path / "cbx.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert [json.loads(m) for m in server.received[1:3]] == [
        {"type": "unsubscribe", "product_ids": [SYM], "channels": ["level2_batch"]},
        {"type": "subscribe", "product_ids": [SYM], "channels": ["level2_batch"]},
    ]
    assert server.connections == 1
    assert quality_kinds(db, EXCHANGE) == ["resync", "crossed", "resync"]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh).top(20)
    assert (bids, asks) == ([(100.0, 4.0)], [(100.02, 2.0), (100.03, 6.0), (100.04, 1.0)])
