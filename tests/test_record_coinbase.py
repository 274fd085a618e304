"""`workbench record coinbase ...` (Advanced Trade) end to end, against a local replay server.

Frames follow Coinbase's documented Advanced Trade formats. The expected book comes from this
file's own replay of the same frames (``json.loads`` + ``Decimal`` into ``RefBook``: a
snapshot resets the product's book, an update applies while the connection's
``sequence_num`` has advanced by exactly one since the snapshot; after a jump nothing applies
until the next snapshot), sharing no code with the venue parser or the feed. Expected trades
are every ``market_trades`` row once, with the taker side: the opposite of the maker ``side``.
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

EXCHANGE = "coinbase"
SYM = "BTC-USD"
ERROR = b'{"type":"error","message":"failure to subscribe"}'
GARBAGE = b'{"channel":"l2_data","client_id":"","timestamp":"2026-04-07T00:0'


def envelope(channel: str, seq: int, events: list[dict[str, Any]], second: int = 0) -> bytes:
    body = {
        "channel": channel,
        "client_id": "",
        "timestamp": f"2026-04-07T00:28:{second:02d}.123456789Z",
        "sequence_num": seq,
        "events": events,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def ack(seq: int) -> bytes:
    return envelope("subscriptions", seq, [{"subscriptions": {"level2": [SYM]}}])


def book(seq: int, kind: str, bids: list[list[str]], offers: list[list[str]]) -> bytes:
    when = "1970-01-01T00:00:00Z" if kind == "snapshot" else "2026-04-07T00:28:30.000001234Z"
    updates = [
        {"side": side, "event_time": when, "price_level": p, "new_quantity": q}
        for side, levels in (("bid", bids), ("offer", offers))
        for p, q in levels
    ]
    return envelope("l2_data", seq, [{"type": kind, "product_id": SYM, "updates": updates}])


def trades(seq: int, kind: str, *rows: tuple[str, str, str, str]) -> bytes:
    """(trade_id, maker side "BUY"|"SELL", price, size) rows, in the order given."""
    listed = [
        {
            "trade_id": i,
            "product_id": SYM,
            "price": p,
            "size": s,
            "side": d,
            "time": f"2026-04-07T00:28:3{n % 10}.{n:06d}Z",
        }
        for n, (i, d, p, s) in enumerate(rows)
    ]
    return envelope("market_trades", seq, [{"type": kind, "trades": listed}])


def heartbeat(seq: int, counter: int) -> bytes:
    return envelope("heartbeats", seq, [{"current_time": "x", "heartbeat_counter": counter}])


def reference(*connections: list[bytes]) -> RefBook:
    """Each list: the frames of one connection, in order."""
    ref = RefBook()
    for frames in connections:
        last = None
        in_sync = False
        for raw in frames:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if "sequence_num" not in msg:
                continue
            seq = msg["sequence_num"]
            if last is not None and seq <= last:
                continue
            if last is not None and seq != last + 1:
                in_sync = False
            last = seq
            if msg["channel"] != "l2_data":
                continue
            for event in msg["events"]:
                if event["type"] == "snapshot":
                    ref.reset()
                    in_sync = True
                if in_sync:
                    for u in event["updates"]:
                        ref.set(
                            "bid" if u["side"] == "bid" else "ask",
                            u["price_level"],
                            u["new_quantity"],
                        )
    return ref


def expected_trades(*frames: bytes) -> list[tuple[str, str, float, float, str]]:
    taker = {"BUY": "sell", "SELL": "buy"}
    rows = set()
    for raw in frames:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if msg.get("channel") == "market_trades":
            for event in msg["events"]:
                for t in event["trades"]:
                    rows.add(
                        (
                            t["product_id"],
                            t["trade_id"],
                            float(t["price"]),
                            float(t["size"]),
                            taker[t["side"]],
                        )
                    )
    return sorted(rows)


def test_records_the_book_with_offers_and_taker_trades(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    frames = [
        ack(0),
        book(
            1,
            "snapshot",
            [["68923.66", "0.5"], ["68923.01", "1.25"]],
            [["68923.67", "0.00064"], ["68924.94", "2"]],
        ),
        trades(
            2,
            "snapshot",
            ("995098663", "SELL", "68923.67", "0.00064"),
            ("995098662", "BUY", "68923.66", "0.00123858"),
        ),
        heartbeat(3, 100),
        book(4, "update", [["68923.66", "0"], ["68922.50", "3.1"]], [["68923.67", "0.5"]]),
        GARBAGE,
        trades(
            5,
            "update",
            ("995098664", "SELL", "68923.67", "0.25"),
            ("995098665", "BUY", "68922.50", "0.1"),
        ),
        ERROR,
        book(6, "update", [["68923.01", "1.5"]], [["68924.94", "0"], ["68925.00", "0.00005100"]]),
        heartbeat(7, 101),
        book(7, "update", [["68000.00", "9"]], []),  # a duplicate sequence_num: ignored
    ]
    server = serve(servers, Script(frames))
    db = tmp_path / "coinbase.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    subscribed = [json.loads(m) for m in server.received[:3]]
    assert subscribed == [
        {"type": "subscribe", "product_ids": [SYM], "channel": "level2"},
        {"type": "subscribe", "product_ids": [SYM], "channel": "market_trades"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames).top(20)
    assert (bids, asks) == (
        [(68923.01, 1.5), (68922.5, 3.1)],
        [(68923.67, 0.5), (68925.0, 5.1e-05)],
    )
    got = stored_trades(db, EXCHANGE)
    assert got == expected_trades(*frames)
    assert [(t[1], t[4]) for t in got] == [
        ("995098662", "sell"),
        ("995098663", "buy"),
        ("995098664", "buy"),
        ("995098665", "sell"),
    ]
    assert quality_kinds(db, EXCHANGE) == ["resync"]  # the initial sync only
    reasons = [reason for reason, _ in quarantined(db, EXCHANGE)]
    assert len(reasons) == 2 and "venue error reply: failure to subscribe" in reasons


def test_a_sequence_num_jump_resyncs_by_resubscribing_and_recovers_the_lost_trade(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    frames = [
        ack(0),
        book(1, "snapshot", [["100.00", "1"], ["99.99", "2"]], [["100.01", "1"], ["100.02", "3"]]),
        trades(2, "snapshot", ("501", "BUY", "100.00", "1")),
        book(3, "update", [["100.00", "1.5"]], []),
        # sequence_num 4 is lost: a market_trades update with trade 502 in it
        book(5, "update", [["99.98", "7"]], []),
        book(6, "update", [], [["100.03", "1"]]),
    ]
    fresh = [
        ack(7),
        ack(8),
        book(9, "snapshot", [["100.00", "4"], ["99.97", "1"]], [["100.02", "2"], ["100.04", "1"]]),
        ack(10),
        ack(11),
        trades(12, "snapshot", ("502", "SELL", "100.01", "0.3"), ("501", "BUY", "100.00", "1")),
        book(13, "update", [["99.97", "0"]], [["100.03", "6"]]),
    ]
    server = serve(servers, Script(frames, replies={b"unsubscribe": fresh}))
    db = tmp_path / "coinbase.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    resubscribe = [json.loads(m) for m in server.received[3:7]]
    assert resubscribe == [
        {"type": action, "product_ids": [SYM], "channel": channel}
        for channel in ("level2", "market_trades")
        for action in ("unsubscribe", "subscribe")
    ]
    assert server.connections == 1  # resynced on the same connection
    events = quality_events(db, EXCHANGE)
    gap = next(detail for _, kind, detail in events if kind == "gap")
    assert (gap["rule"], gap["expected"], gap["got"]) == ("sequence", 4, 5)
    assert quality_kinds(db, EXCHANGE) == ["resync", "gap", "resync"]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh).top(20)
    assert (bids, asks) == ([(100.0, 4.0)], [(100.02, 2.0), (100.03, 6.0), (100.04, 1.0)])
    got = stored_trades(db, EXCHANGE)
    assert got == expected_trades(*frames, *fresh)
    assert [(t[1], t[4]) for t in got] == [("501", "sell"), ("502", "buy")]  # 502 recovered


def test_a_disconnect_rebuilds_the_book_from_the_next_connections_snapshot(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    first = [
        ack(0),
        book(1, "snapshot", [["50.00", "1"]], [["50.10", "1"]]),
        trades(2, "snapshot", ("7001", "SELL", "50.10", "1")),
        book(3, "update", [["50.05", "2"]], []),
        trades(4, "update", ("7002", "BUY", "50.05", "0.4")),
    ]
    second = [  # a new connection numbers its messages from 0 again
        ack(0),
        book(1, "snapshot", [["50.20", "3"], ["50.00", "1"]], [["50.30", "2"]]),
        # trades 7003 (while disconnected) and 7002 (already stored) in the trades snapshot
        trades(2, "snapshot", ("7003", "SELL", "50.30", "2"), ("7002", "BUY", "50.05", "0.4")),
        book(3, "update", [["50.00", "0"]], [["50.40", "5"]]),
        book(4, "update", [["50.25", "1.125"]], []),
    ]
    # delay: every subscribe is in before the close (unread data would turn the close into a
    # reset, and a reset discards what the client has not read yet)
    server = serve(servers, Script(first, close_after=True, delay=0.2), Script(second))
    db = tmp_path / "coinbase.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert server.connections >= 2
    seen = quality_kinds(db, EXCHANGE)
    assert {"disconnect", "reconnect"} <= set(seen) and seen.count("resync") == 2
    assert "gap" not in seen  # sequence_num restarting on a new connection is no gap
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(first, second).top(20)
    assert (bids, asks) == ([(50.25, 1.125), (50.2, 3.0)], [(50.3, 2.0), (50.4, 5.0)])
    got = stored_trades(db, EXCHANGE)
    assert got == expected_trades(*first, *second)
    assert [t[1] for t in got] == ["7001", "7002", "7003"]  # each once
