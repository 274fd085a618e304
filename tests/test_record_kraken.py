"""`workbench record kraken ...` end to end, against a local replay server.

Frames follow Kraken's documented WebSocket v2 formats (JSON numbers for prices and
quantities). The server side keeps the true book (:class:`Kraken`): each book frame carries
the checksum Kraken would send for it, computed here with ``Decimal`` from the pair's
precision. The expected final book is this file's own replay of the frames the recorder
received (``json.loads`` with ``Decimal`` into ``RefBook``, truncated to the subscribed depth,
out of sync from a checksum mismatch until the next snapshot), sharing no code with the venue or
the feed.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import wait_for
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
from workbench import Workbench
from workbench.errors import DepthError

EXCHANGE = "kraken"
SYM = "BTC/USD"
DEPTH = 25
PRICE_PLACES, QTY_PLACES = 1, 8
TS = "2026-11-21T09:30:00.123456Z"
STATUS = (
    b'{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"online",'
    b'"api_version":"v2","connection_id":12393906104898154338}]}'
)
HEARTBEAT = b'{"channel":"heartbeat"}'


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def ack(method: str, channel: str, req_id: int, depth: int = DEPTH) -> bytes:
    result: dict[str, Any] = {"channel": channel, "snapshot": True}
    if channel == "book":
        result |= {"depth": depth, "symbol": SYM}
    elif channel == "trade":
        result["symbol"] = SYM
    return dumps(
        {
            "method": method,
            "result": result,
            "success": True,
            "time_in": "2026-11-21T09:29:59.999000Z",
            "time_out": "2026-11-21T09:29:59.999100Z",
            "req_id": req_id,
        }
    )


def instrument() -> bytes:
    pair = {
        "symbol": SYM,
        "base": "BTC",
        "quote": "USD",
        "status": "online",
        "qty_precision": QTY_PLACES,
        "qty_increment": 1e-08,
        "price_precision": PRICE_PLACES,
        "cost_precision": 5,
        "marginable": True,
        "has_index": True,
        "cost_min": 0.5,
        "margin_initial": 0.2,
        "position_limit_long": 250,
        "position_limit_short": 200,
        "tick_size": 0.1,
        "price_increment": 0.1,
        "qty_min": 0.0001,
    }
    other = {**pair, "symbol": "MATIC/GBP", "base": "MATIC", "quote": "GBP"}
    other |= {"price_precision": 4, "tick_size": 0.0001, "price_increment": 0.0001}
    usd = {"id": "USD", "status": "enabled", "precision": 4, "precision_display": 2}
    body = {"assets": [usd], "pairs": [pair, other]}
    return dumps({"channel": "instrument", "type": "snapshot", "data": body})


def trades(kind: str, *rows: tuple[str, str, str, int]) -> bytes:
    """(taker side, price, qty, trade_id) rows as one ``trade`` message."""
    data = [
        {
            "symbol": SYM,
            "side": side,
            "price": Decimal(price),
            "qty": Decimal(qty),
            "ord_type": "market",
            "trade_id": trade_id,
            "timestamp": TS,
        }
        for side, price, qty, trade_id in rows
    ]
    return json.dumps({"channel": "trade", "type": kind, "data": data}, default=float).encode()


def text(value: Decimal, places: int) -> str:
    return str(value.quantize(Decimal(1).scaleb(-places))).replace(".", "").lstrip("0")


def checksum(book: RefBook) -> int:
    """Kraken's rule from its docs: top 10 asks then bids, fixed precision, '.' and leading
    zeros removed, CRC32."""
    asks = sorted(book.asks.items())[:10]
    bids = sorted(book.bids.items(), reverse=True)[:10]
    parts = [text(p, PRICE_PLACES) + text(q, QTY_PLACES) for p, q in [*asks, *bids]]
    return zlib.crc32("".join(parts).encode())


class Kraken:
    """The venue's true book at the subscribed ``depth``, and the frames it sends about it."""

    def __init__(self, depth: int = DEPTH) -> None:
        self.depth = depth
        self.book = RefBook()

    def snapshot(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> bytes:
        self.book.reset()
        return self._message("snapshot", bids, asks)

    def update(
        self,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        *,
        wrong_checksum: bool = False,
    ) -> bytes:
        return self._message("update", bids, asks, wrong_checksum)

    def _message(
        self,
        kind: str,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        wrong_checksum: bool = False,
    ) -> bytes:
        for side, levels in (("bid", bids), ("ask", asks)):
            for price, qty in levels:
                self.book.set(side, Decimal(price), Decimal(qty))
        self.book.truncate(self.depth)
        crc = checksum(self.book) ^ (0x5A5A if wrong_checksum else 0)
        data = {
            "symbol": SYM,
            "bids": [{"price": float(p), "qty": float(q)} for p, q in bids],
            "asks": [{"price": float(p), "qty": float(q)} for p, q in asks],
            "checksum": crc,
            "timestamp": TS,
        }
        # json writes floats in their shortest spelling, as Kraken does (30000.0, 0.5, 5e-05)
        return dumps({"channel": "book", "type": kind, "data": [data]})


def ladder(best: str, step: str, n: int) -> list[tuple[str, str]]:
    return [(str(Decimal(best) + Decimal(step) * i), f"{i + 1}.{i:04d}0001") for i in range(n)]


def reference(frames: list[bytes], depth: int = DEPTH) -> RefBook:
    ref = RefBook()
    synced = False
    for raw in frames:
        msg = json.loads(raw, parse_float=Decimal)
        if msg.get("channel") != "book":
            continue
        for data in msg["data"]:
            if msg["type"] == "snapshot":
                ref.reset()
                synced = True
            elif not synced:
                continue
            for side, key in (("bid", "bids"), ("ask", "asks")):
                for level in data[key]:
                    ref.set(side, level["price"], level["qty"])
            ref.truncate(depth)
            if checksum(ref) != data["checksum"]:
                synced = False  # a recorder must not trust it until the next snapshot
    assert synced, "the scenario must end in sync"
    return ref


def expected_trades(frames: list[bytes]) -> list[tuple[str, str, float, float, str]]:
    rows = set()
    for raw in frames:
        msg = json.loads(raw, parse_float=Decimal)
        if msg.get("channel") == "trade":
            for t in msg["data"]:
                rows.add((SYM, str(t["trade_id"]), float(t["price"]), float(t["qty"]), t["side"]))
    return sorted(rows)


def opening(venue: Kraken) -> list[bytes]:
    """What Kraken sends after our three subscribes: acks, instruments, snapshots."""
    depth = venue.depth
    return [
        STATUS,
        ack("subscribe", "instrument", 1),
        instrument(),
        ack("subscribe", "book", 2, depth),
        venue.snapshot(ladder("30000.0", "-0.5", depth), ladder("30000.5", "0.5", depth)),
        ack("subscribe", "trade", 3),
        trades("snapshot", ("buy", "30000.5", "0.01", 9001), ("sell", "30000.0", "0.25", 9002)),
    ]


def test_book_trades_truncation_and_a_checksum_mismatch_resubscribed(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    venue = Kraken()
    frames = [
        *opening(venue),
        HEARTBEAT,
        venue.update([("30000.2", "1.5")], []),  # a new best bid: the 25th bid leaves silently
        venue.update([("29999.5", "0.7"), ("29999.5", "0"), ("29999.5", "2.25")], []),
        trades("update", ("buy", "30000.5", "0.00005", 9003), ("sell", "30000.2", "1.5", 9004)),
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":'
        b'"29990.0","qty":1}],"asks":[],"checksum":1,"timestamp":"2026-11-21T09:30:00.2Z"}]}',
        venue.update([], [("30000.5", "0"), ("30013.0", "3.125")]),
        HEARTBEAT,
        venue.update([("29998.0", "4.0")], [], wrong_checksum=True),
    ]
    fresh = [
        ack("unsubscribe", "book", 5),
        ack("subscribe", "book", 6),
        venue.snapshot(ladder("30000.1", "-0.5", DEPTH), ladder("30001.0", "0.5", DEPTH)),
        venue.update([], [("30001.0", "0.5"), ("30000.9", "0.125")]),
        trades("update", ("buy", "30000.9", "0.125", 9005)),
    ]
    server = serve(servers, Script(frames, replies={b'"unsubscribe"': fresh}))
    db = tmp_path / "kraken.duckdb"
    record_venue(EXCHANGE, [SYM], server, db, "--depth", str(DEPTH))

    sent = [json.loads(m) for m in server.received]
    assert [m["params"]["channel"] for m in sent[:3]] == ["instrument", "book", "trade"]
    requests = [m for m in sent[3:] if m.get("method") in ("subscribe", "unsubscribe")]
    assert [(m["method"], m["params"]) for m in requests] == [
        ("unsubscribe", {"channel": "book", "symbol": [SYM], "depth": DEPTH}),
        ("subscribe", {"channel": "book", "symbol": [SYM], "depth": DEPTH, "snapshot": True}),
    ]
    events = quality_events(db, EXCHANGE)
    assert quality_kinds(db, EXCHANGE) == ["resync", "checksum", "resync"]
    mismatch = next(detail for _, kind, detail in events if kind == "checksum")
    assert mismatch["expected"] != mismatch["computed"]

    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    ref = reference(frames + fresh)
    assert valid and (bids, asks) == ref.top(30)
    assert (bids, asks) == venue.book.top(30)
    assert len(bids) == len(asks) == DEPTH
    assert asks[:2] == [(30000.9, 0.125), (30001.0, 0.5)]

    assert stored_trades(db, EXCHANGE) == expected_trades(frames + fresh)
    assert [t[4] for t in stored_trades(db, EXCHANGE)] == ["buy", "sell", "buy", "sell", "buy"]
    ((reason, raw),) = quarantined(db, EXCHANGE)
    assert "price" in reason and '"29990.0"' in raw


@pytest.mark.parametrize("depth", [10, 100])
def test_a_chosen_depth_is_subscribed_kept_and_every_checksum_verifies(
    servers: list[ReplayServer], tmp_path: Path, depth: int
) -> None:
    venue = Kraken(depth)
    frames = [*opening(venue)]
    old_bids = ladder("30000.0", "-0.5", depth)
    old_asks = ladder("30000.5", "0.5", depth)
    frames += [
        venue.update([("30000.2", "1.5")], []),  # a new best bid: the worst one leaves unsent
        # Only the top five bids are left, so the checksum now reaches the bottom of the book:
        # a client that kept the level pushed out, or truncated at another depth, disagrees.
        venue.update([(p, "0") for p, _ in old_bids[: depth - 5]], []),
        venue.update([], [(old_asks[-1][0], "7.5")]),  # below the checksum's top 10
        trades("update", ("sell", "30000.2", "0.5", 9003)),
        venue.update([("29000.0", "2.0")], [("30000.5", "0")]),
        venue.update([], [("30000.6", "0.25")], wrong_checksum=True),  # the checker is live
    ]
    fresh = [
        ack("unsubscribe", "book", 5, depth),
        ack("subscribe", "book", 6, depth),
        venue.snapshot(ladder("30000.1", "-0.5", depth), ladder("30001.0", "0.5", depth)),
        venue.update([("30000.4", "0.75")], [("30000.9", "0.125")]),
    ]
    server = serve(servers, Script(frames, replies={b'"unsubscribe"': fresh}))
    db = tmp_path / "kraken.duckdb"
    done = record_venue(EXCHANGE, [SYM], server, db, "--depth", str(depth))

    book = json.loads(server.received[1])["params"]
    assert book == {"channel": "book", "symbol": [SYM], "depth": depth, "snapshot": True}
    resubscribe = [json.loads(m)["params"] for m in server.received[3:]]
    assert [p.get("depth") for p in resubscribe if p.get("channel") == "book"] == [depth] * 2
    # Exactly one mismatch, the one the venue faked: every other checksum verified.
    assert quality_kinds(db, EXCHANGE) == ["resync", "checksum", "resync"]
    faked = json.loads(frames[-1])["data"][0]["checksum"]
    assert [d["expected"] for _, kind, d in quality_events(db, EXCHANGE) if kind == "checksum"] == [
        faked
    ]
    assert "1 checksum mismatches" in done.stdout and f"books {SYM}:ok" in done.stdout
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh, depth).top(depth + 5)
    assert (bids, asks) == venue.book.top(depth + 5)
    assert len(bids) == len(asks) == depth  # stored at the chosen depth
    assert stored_trades(db, EXCHANGE) == expected_trades(frames)


def test_the_python_api_subscribes_the_chosen_depth_and_refuses_others(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    venue = Kraken(10)
    server = serve(servers, Script(opening(venue)))
    urls = {"ws_url": server.ws_url, "rest_url": server.rest_url}
    with Workbench.open(tmp_path / "api.duckdb") as wb:
        offered = r"kraken offers book depths 10, 25, 100, 500, 1000 \(levels per side\); got 30"
        with pytest.raises(DepthError, match=offered):
            wb.start_feed(EXCHANGE, [SYM], depth=30, **urls)
        assert wb.feeds == {} and server.connections == 0
        feed = wb.start_feed(EXCHANGE, [SYM], depth=10, **urls)
        assert wait_for(lambda: feed.status().trades == 2 and feed.status().book_valid[SYM], 15)
        assert feed.venue_cls.book_depth == feed.depth == 10
        assert feed.status().checksums == 0 and len(feed.book(SYM).top(20)[0]) == 10
        wb.stop_all()
    assert json.loads(server.received[1])["params"]["depth"] == 10


def test_a_lost_update_is_caught_by_the_next_checksum(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    venue = Kraken()
    frames = [*opening(venue), venue.update([("30000.0", "1.25")], [])]
    venue.update([("29999.0", "9.5")], [])  # sent by the venue, lost on the way
    frames.append(venue.update([], [("30001.0", "0")]))
    fresh = [
        ack("unsubscribe", "book", 5),
        ack("subscribe", "book", 6),
        venue.snapshot(
            [(str(p), str(q)) for p, q in sorted(venue.book.bids.items(), reverse=True)],
            [(str(p), str(q)) for p, q in sorted(venue.book.asks.items())],
        ),
    ]
    server = serve(servers, Script(frames, replies={b'"unsubscribe"': fresh}))
    db = tmp_path / "kraken.duckdb"
    record_venue(EXCHANGE, [SYM], server, db, "--depth", str(DEPTH))

    assert quality_kinds(db, EXCHANGE) == ["resync", "checksum", "resync"]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh).top(30)
    assert (29999.0, 9.5) in bids  # the lost level is back, from the fresh snapshot


def test_a_disconnect_rebuilds_the_book_and_the_trade_snapshot_fills_the_hole_once(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    venue = Kraken()
    first = [
        *opening(venue),
        venue.update([("30000.2", "1.5")], []),
        trades("update", ("buy", "30000.5", "0.5", 9003)),
    ]
    # Trades 9004 and 9005 happen while we are away; the new subscription's snapshot of the
    # last trades repeats 9002-9003 and brings them.
    second = [
        STATUS,
        ack("subscribe", "instrument", 1),
        instrument(),
        ack("subscribe", "book", 2),
        venue.snapshot(ladder("29990.0", "-0.5", DEPTH), ladder("29990.5", "0.5", DEPTH)),
        ack("subscribe", "trade", 3),
        trades(
            "snapshot",
            ("sell", "30000.0", "0.25", 9002),
            ("buy", "30000.5", "0.5", 9003),
            ("sell", "29995.0", "3", 9004),
            ("sell", "29990.0", "1.75", 9005),
        ),
        venue.update([("29990.0", "0")], [("29990.5", "0.125")]),
        trades("update", ("buy", "29990.5", "0.375", 9006)),
    ]
    server = serve(servers, Script(first, close_after=True), Script(second))
    db = tmp_path / "kraken.duckdb"
    record_venue(EXCHANGE, [SYM], server, db, "--depth", str(DEPTH))

    assert server.connections >= 2
    seen = quality_kinds(db, EXCHANGE)
    assert {"disconnect", "reconnect"} <= set(seen)
    assert "checksum" not in seen and seen.count("resync") >= 2
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(first + second).top(30)
    assert (bids, asks) == venue.book.top(30)
    stored = stored_trades(db, EXCHANGE)
    assert [t[1] for t in stored] == ["9001", "9002", "9003", "9004", "9005", "9006"]
    assert stored == expected_trades(first + second)
    assert quarantined(db, EXCHANGE) == []
