"""`workbench record bybit ...` end to end, against a local replay server.

Frames follow Bybit v5's documented spot formats. The expected book comes from this file's own
replay of the same frames (``json.loads`` + ``Decimal`` into ``RefBook``: a snapshot resets, a
delta applies only when its ``u`` is the last one + 1, the window keeps 50 levels), sharing no
code with the venue parser or the feed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

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

EXCHANGE = "bybit"
SYM = "BTCUSDT"
ACK = b'{"success":true,"ret_msg":"subscribe","conn_id":"c1","req_id":"","op":"subscribe"}'
UNSUB_ACK = b'{"success":true,"ret_msg":"","conn_id":"c1","req_id":"","op":"unsubscribe"}'
PONG = b'{"success":true,"ret_msg":"pong","conn_id":"c1","op":"ping"}'
REJECTED = (
    b'{"success":false,"ret_msg":"Invalid symbol :[orderbook.50.BTCUSDX]","conn_id":"c1",'
    b'"req_id":"","op":"subscribe"}'
)


def book(kind: str, u: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    ts = 1700000000000 + u
    body = {
        "topic": f"orderbook.50.{SYM}",
        "type": kind,
        "ts": ts,
        "data": {"s": SYM, "b": bids, "a": asks, "u": u, "seq": 71000000000 + u},
        "cts": ts - 1,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def trades(*rows: tuple[str, str, str, str]) -> bytes:
    """(taker "Buy"|"Sell", price, size, id) rows as one ``publicTrade`` push."""
    data = [
        {"T": 1700000000500, "s": SYM, "S": side, "v": v, "p": p, "i": i, "BT": False}
        for side, p, v, i in rows
    ]
    body = {"topic": f"publicTrade.{SYM}", "type": "snapshot", "ts": 1700000000501, "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


def ladder(best: Decimal, step: Decimal, n: int) -> list[list[str]]:
    return [[str(best + step * i), f"{(i % 7) + 1}.{i:03d}"] for i in range(n)]


def reference(frames: list[bytes]) -> RefBook:
    ref = RefBook()
    last: int | None = None
    for raw in frames:
        msg = json.loads(raw)
        if not str(msg.get("topic", "")).startswith("orderbook."):
            continue
        data = msg["data"]
        if msg["type"] == "snapshot":
            ref.reset()
        elif last is None or data["u"] != last + 1:
            last = None  # out of sync until the next snapshot
            continue
        last = data["u"]
        for p, s in data["b"]:
            ref.set("bid", p, s)
        for p, s in data["a"]:
            ref.set("ask", p, s)
        ref.truncate(50)
    return ref


def expected_trades(frames: list[bytes]) -> list[tuple[str, str, float, float, str]]:
    rows = {
        (t["s"], t["i"], float(t["p"]), float(t["v"]), t["S"].lower())
        for raw in frames
        if str((msg := json.loads(raw)).get("topic", "")).startswith("publicTrade.")
        for t in msg["data"]
    }
    return sorted(rows)


def test_records_the_50_level_book_and_taker_trades(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    bids = ladder(Decimal("30000.00"), Decimal("-0.50"), 50)
    asks = ladder(Decimal("30000.50"), Decimal("0.50"), 50)
    frames = [
        ACK,
        book("snapshot", 100, bids, asks),
        book("delta", 101, [["30000.00", "2.5"]], [["30000.50", "0"]]),
        trades(("Buy", "30000.50", "0.812", "2290000000007764001")),
        book("delta", 102, [["30000.10", "0.003"]], []),  # a new best bid pushes one out
        trades(
            ("Sell", "30000.00", "0.5", "2290000000007764002"),
            ("Sell", "29999.50", "0.00005100", "2290000000007764003"),
        ),
        PONG,
        REJECTED,
        book("delta", 103, [["29999.50", "0"], ["29990.00", "4"]], [["30001.00", "7.25"]]),
    ]
    server = serve(servers, Script(frames))
    db = tmp_path / "bybit.duckdb"
    record_venue(EXCHANGE, [SYM], server, db, "--depth", "50")

    assert json.loads(server.received[0]) == {
        "op": "subscribe",
        "args": [f"orderbook.50.{SYM}", f"publicTrade.{SYM}"],
    }
    valid, got_bids, got_asks = final_book(db, EXCHANGE, SYM)
    want_bids, want_asks = reference(frames).top(50)
    assert valid and len(got_bids) == len(got_asks) == 49
    assert 29975.5 not in [p for p, _ in got_bids]  # pushed out of the window by 30000.10
    assert (got_bids, got_asks) == (want_bids, want_asks)
    assert stored_trades(db, EXCHANGE) == expected_trades(frames)
    assert [t[4] for t in stored_trades(db, EXCHANGE)] == ["buy", "sell", "sell"]
    assert quality_kinds(db, EXCHANGE) == ["resync"]  # the initial sync only
    ((reason, raw),) = quarantined(db, EXCHANGE)
    assert "Invalid symbol" in reason and raw == REJECTED.decode()


def test_a_skipped_u_is_a_gap_repaired_by_resubscribing(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    frames = [
        ACK,
        book("snapshot", 100, [["100.0", "1"], ["99.9", "2"]], [["100.1", "1"], ["100.2", "3"]]),
        book("delta", 101, [["100.0", "1.5"]], []),
        trades(("Buy", "100.1", "0.5", "t-1")),
        book("delta", 102, [], [["100.1", "0.5"]]),
        book("delta", 104, [["99.8", "9"]], []),  # 103 never arrives
        book("delta", 105, [], [["100.3", "1"]]),
    ]
    fresh = [
        UNSUB_ACK,
        ACK,
        book("snapshot", 230, [["100.0", "4"], ["99.7", "1"]], [["100.2", "2"], ["100.4", "1"]]),
        book("delta", 231, [["99.7", "0"]], [["100.3", "6"]]),
        trades(("Sell", "100.0", "0.25", "t-2")),
    ]
    server = serve(servers, Script(frames, replies={b"unsubscribe": fresh}))
    db = tmp_path / "bybit.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    sent = [json.loads(m) for m in server.received[1:] if b"subscribe" in m]
    assert sent[:2] == [
        {"op": "unsubscribe", "args": [f"orderbook.50.{SYM}"]},
        {"op": "subscribe", "args": [f"orderbook.50.{SYM}"]},
    ]
    events = quality_events(db, EXCHANGE)
    gap = next(detail for _, kind, detail in events if kind == "gap")
    assert gap["from_seq"] == 103
    assert quality_kinds(db, EXCHANGE) == ["resync", "gap", "resync"]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh).top(20)
    assert (bids, asks) == ([(100.0, 4.0)], [(100.2, 2.0), (100.3, 6.0), (100.4, 1.0)])
    assert stored_trades(db, EXCHANGE) == expected_trades(frames + fresh)


def test_a_disconnect_rebuilds_the_book_from_the_next_connections_snapshot(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    first = [
        ACK,
        book("snapshot", 100, [["50.00", "1"]], [["50.10", "1"]]),
        book("delta", 101, [["50.05", "2"]], []),
        trades(("Buy", "50.10", "1", "a-1"), ("Sell", "50.05", "0.4", "a-2")),
    ]
    second = [
        ACK,
        book("snapshot", 140, [["50.20", "3"], ["50.00", "1"]], [["50.30", "2"]]),
        book("delta", 141, [["50.00", "0"]], [["50.40", "5"]]),
        book("delta", 142, [["50.25", "1.125"]], []),
        trades(("Buy", "50.30", "2", "a-3")),
    ]
    server = serve(servers, Script(first, close_after=True), Script(second))
    db = tmp_path / "bybit.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert server.connections >= 2
    seen = quality_kinds(db, EXCHANGE)
    assert {"disconnect", "reconnect"} <= set(seen) and seen.count("resync") == 2
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(first + second).top(20)
    assert (bids, asks) == ([(50.25, 1.125), (50.2, 3.0)], [(50.3, 2.0), (50.4, 5.0)])
    # Bybit has no id-paged trade history: what the stream delivered is what is stored.
    assert stored_trades(db, EXCHANGE) == expected_trades(first + second)


def test_a_snapshot_after_a_bybit_restart_resets_the_book_and_its_u(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    frames = [
        ACK,
        book("snapshot", 5000, [["10.0", "1"], ["9.9", "1"]], [["10.1", "1"]]),
        book("delta", 5001, [["9.9", "4"]], []),
        book("snapshot", 1, [["10.0", "2"]], [["10.2", "1"], ["10.3", "1"]]),  # u restarts
        book("delta", 2, [["9.8", "1"]], [["10.2", "0"]]),
        book("delta", 3, [["10.0", "2.5"]], []),
    ]
    server = serve(servers, Script(frames))
    db = tmp_path / "bybit.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames).top(20)
    assert (bids, asks) == ([(10.0, 2.5), (9.8, 1.0)], [(10.3, 1.0)])
    assert "gap" not in quality_kinds(db, EXCHANGE) and "duplicate" not in quality_kinds(
        db, EXCHANGE
    )
