"""`workbench record binance` end to end against a local replay server.

Each scenario writes Binance traffic as the venue documents it (combined-stream frames, the
REST depth snapshot, REST aggTrades) from one "true" history of the book: every snapshot the
server hands out is that history at its ``lastUpdateId``, so a recorder that syncs by
Binance's rule ends with the true book whatever the timing. The expected book comes from this
file's own reading of the frames (``json.loads`` + ``Decimal`` in :class:`RefBook`), sharing no
code with the parser or the feed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.replay_server import ReplayServer, Script
from tests.venue_e2e import (
    REST_SYNCED,
    RefBook,
    at_least,
    final_book,
    quality_events,
    quality_kinds,
    quarantined,
    query,
    record_venue,
    serve,
    stored_trades,
)

EXCHANGE = "binance"
ACK = b'{"result":null,"id":1}'
E0 = 1763712000000  # ms


class History:
    """The true book over time: update-id ranges applied in order, snapshots taken from it."""

    def __init__(self, bids: list[list[str]], asks: list[list[str]], last_id: int) -> None:
        self.book = RefBook()
        for price, size in bids:
            self.book.set("bid", price, size)
        for price, size in asks:
            self.book.set("ask", price, size)
        self.last_id = last_id

    def event(
        self, first: int, last: int, bids: list[list[str]], asks: list[list[str]], symbol: str
    ) -> bytes:
        """A depthUpdate for ids first..last; applied to the truth if it continues it."""
        if first == self.last_id + 1:
            for price, size in bids:
                self.book.set("bid", price, size)
            for price, size in asks:
                self.book.set("ask", price, size)
            self.last_id = last
        data = {"e": "depthUpdate", "E": E0 + last, "s": symbol, "U": first, "u": last}
        data |= {"b": bids, "a": asks}
        return json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data}).encode()

    def snapshot(self, last_update_id: int | None = None) -> bytes:
        """The REST book now; ``last_update_id`` > now stands for a snapshot taken inside the
        next event, whose changes it partly holds (the event's absolute sizes overwrite them)."""
        bids = sorted(self.book.bids.items(), reverse=True)
        asks = sorted(self.book.asks.items())
        return json.dumps(
            {
                "lastUpdateId": last_update_id or self.last_id,
                "bids": [[str(p), str(s)] for p, s in bids],
                "asks": [[str(p), str(s)] for p, s in asks],
            }
        ).encode()


def agg(symbol: str, trade_id: int, price: str, qty: str, buyer_is_maker: bool) -> dict[str, Any]:
    return {
        "e": "aggTrade", "E": E0 + trade_id, "s": symbol, "a": trade_id, "p": price, "q": qty,
        "f": 10 * trade_id, "l": 10 * trade_id + 1, "T": E0 + trade_id, "m": buyer_is_maker,
        "M": True,
    }  # fmt: skip


def wrap_trade(trade: dict[str, Any]) -> bytes:
    return json.dumps({"stream": f"{trade['s'].lower()}@aggTrade", "data": trade}).encode()


def reference(snapshot: bytes, frames: list[bytes]) -> RefBook:
    """Binance's documented sync, read straight from the JSON: apply the diffs after the
    snapshot's lastUpdateId (the first one straddling it) in order."""
    snap = json.loads(snapshot)
    ref = RefBook()
    for price, size in snap["bids"]:
        ref.set("bid", price, size)
    for price, size in snap["asks"]:
        ref.set("ask", price, size)
    local = snap["lastUpdateId"]
    for raw in frames:
        data = json.loads(raw).get("data", {})
        if data.get("e") != "depthUpdate" or not isinstance(data["U"], int):
            continue  # not a diff, or the malformed one the recorder quarantines
        if data["u"] <= local:
            continue
        assert data["U"] <= local + 1, "the reference replay saw a gap"
        for price, size in data["b"]:
            ref.set("bid", price, size)
        for price, size in data["a"]:
            ref.set("ask", price, size)
        local = data["u"]
    return ref


def taker_trades(symbol: str, trades: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(symbol, id, price, size, TAKER side): ``m`` true means the buyer was the maker."""
    rows = [
        (symbol, str(t["a"]), float(t["p"]), float(t["q"]), "sell" if t["m"] else "buy")
        for t in trades
    ]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def test_initial_sync_buffers_drops_stale_diffs_and_records_taker_sides(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = History(
        [["30000.00", "1.00000000"], ["29999.50", "2.00000000"], ["29999.00", "3.00000000"]],
        [["30000.50", "1.50000000"], ["30001.00", "2.50000000"], ["30001.50", "0.50000000"]],
        990,
    )
    older = truth.event(991, 995, [["29998.00", "9.00000000"]], [], "BTCUSDT")
    # Taken at id 998, in the middle of the next event (996-1002): 30000.00 already moved.
    partial = json.loads(truth.snapshot(998))
    partial["bids"][0] = ["30000.00000000", "1.10000000"]
    snapshot = json.dumps(partial).encode()
    trades = [
        agg("BTCUSDT", 7001, "30000.50", "0.01200000", True),
        agg("BTCUSDT", 7002, "30001.00", "0.50000000", False),
        agg("BTCUSDT", 7003, "30000.00", "0.00051000", True),
    ]
    frames = [
        ACK,
        older,
        truth.event(996, 1002, [["30000.00", "1.20000000"]], [["30000.50", "0"]], "BTCUSDT"),
        wrap_trade(trades[0]),
        wrap_trade(trades[1]),
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        b'"U":"x","u":1003,"b":[],"a":[]}}',
        truth.event(
            1003,
            1005,
            [["29999.50", "0"], ["30000.20", "0.30000000"]],
            [["30001.00", "2.00000000"], ["30002.00", "4.00000000"]],
            "BTCUSDT",
        ),
        b'{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}',
        wrap_trade(trades[2]),
        truth.event(1006, 1006, [], [["30001.50", "0.75000000"]], "BTCUSDT"),
    ]
    server = serve(
        servers,
        *[Script(frames)],
        rest={"/api/v3/depth?symbol=BTCUSDT&limit=1000": snapshot},
    )
    db = tmp_path / "rec.duckdb"
    record_venue(EXCHANGE, ["BTCUSDT"], server, db, until=REST_SYNCED, ws_path="/stream")

    assert json.loads(server.received[0]) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@aggTrade", "btcusdt@depth@100ms"],
        "id": 1,
    }
    ref = reference(snapshot, frames)
    assert ref.top(20) == truth.book.top(20)
    valid, bids, asks = final_book(db, EXCHANGE, "BTCUSDT")
    assert valid and (bids, asks) == ref.top(20)
    applied = query(db, "SELECT DISTINCT seq FROM book_deltas WHERE kind = 'delta' ORDER BY seq")
    assert applied == [(1002,), (1005,), (1006,)]  # 991-995 was in the snapshot: dropped
    assert stored_trades(db, EXCHANGE) == taker_trades("BTCUSDT", trades)
    reasons = [reason for reason, _ in quarantined(db, EXCHANGE)]
    assert len(reasons) == 2 and "invalid stream" in reasons[1]
    assert quality_kinds(db, EXCHANGE) == ["resync"]  # the initial sync, nothing else went wrong


def test_gap_in_update_ids_refetches_the_snapshot_and_ends_valid(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = History([["100.10", "5"], ["100.00", "1"]], [["100.20", "3"], ["100.30", "2"]], 1000)
    first_snapshot = truth.snapshot()
    delivered = [
        truth.event(1001, 1003, [["100.10", "4"]], [], "ETHBTC"),
        truth.event(1004, 1005, [], [["100.25", "1"]], "ETHBTC"),
    ]
    truth.event(1006, 1007, [["100.15", "7"]], [["100.20", "0"]], "ETHBTC")  # lost
    delivered.append(truth.event(1008, 1010, [["100.00", "0"]], [], "ETHBTC"))
    second_snapshot = truth.snapshot()  # lastUpdateId 1010
    delivered.append(truth.event(1011, 1012, [["100.05", "2"]], [["100.25", "1.5"]], "ETHBTC"))
    depth_path = "/api/v3/depth?symbol=ETHBTC&limit=1000"
    server = serve(
        servers,
        *[Script([ACK, *delivered])],
        rest={depth_path: [first_snapshot, second_snapshot]},
    )
    db = tmp_path / "rec.duckdb"
    # resync, gap and the resync from the second REST snapshot
    until = at_least(quality_events=3)
    record_venue(EXCHANGE, ["ETHBTC"], server, db, until=until, ws_path="/stream")

    valid, bids, asks = final_book(db, EXCHANGE, "ETHBTC")
    ref = reference(second_snapshot, delivered)
    assert valid and (bids, asks) == ref.top(20) == truth.book.top(20)
    events = quality_events(db, EXCHANGE)
    gaps = [detail for _, kind, detail in events if kind == "gap"]
    assert len(gaps) == 1 and gaps[0]["from_seq"] == 1006
    assert [kind for _, kind, _ in events].count("resync") == 2  # initial + after the gap
    assert server.rest_requests.count(depth_path) == 2


def test_disconnect_rebuilds_the_book_and_backfills_missed_trades_once(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = History([["0.05000", "10"]], [["0.05010", "12"]], 2000)
    first_snapshot = truth.snapshot()
    before = [
        truth.event(2001, 2002, [["0.04990", "3"]], [], "BTCUSDT"),
        wrap_trade(agg("BTCUSDT", 500, "0.05010", "1", False)),
        wrap_trade(agg("BTCUSDT", 501, "0.05000", "2", True)),
        truth.event(2003, 2004, [], [["0.05020", "5"]], "BTCUSDT"),
    ]
    truth.event(2005, 2008, [["0.05000", "0"]], [["0.05010", "8"]], "BTCUSDT")  # while away
    missed = [
        agg("BTCUSDT", 502, "0.05010", "4", False),
        agg("BTCUSDT", 503, "0.05000", "1", True),
        agg("BTCUSDT", 504, "0.05010", "2", False),
    ]
    second_snapshot = truth.snapshot()  # lastUpdateId 2008, fetched after the reconnect
    live = agg("BTCUSDT", 505, "0.05010", "0.5", True)
    after = [
        truth.event(2009, 2011, [["0.04995", "6"]], [], "BTCUSDT"),
        wrap_trade(live),
        truth.event(2012, 2012, [], [["0.05010", "0"]], "BTCUSDT"),
    ]
    server = serve(
        servers,
        *[
            Script(
                [ACK, *before],
                close_after=True,
                close_after_rest="/api/v3/depth?symbol=BTCUSDT&limit=1000",
                linger=0.3,
            ),
            Script([ACK, *after]),
        ],
        rest={
            "/api/v3/depth?symbol=BTCUSDT&limit=1000": [first_snapshot, second_snapshot],
            "/api/v3/aggTrades?symbol=BTCUSDT&fromId=502&limit=1000": json.dumps(
                [*missed, live]
            ).encode(),
            "/api/v3/aggTrades?symbol=BTCUSDT&fromId=506&limit=1000": b"[]",
        },
    )
    db = tmp_path / "rec.duckdb"
    # The user's spelling is lowercase: streams, REST and stored rows all follow from it.
    # 502-504 only by the backfill; resync, disconnect, reconnect, resync, backfill
    until = at_least(trades=6, quality_events=5)
    record_venue(EXCHANGE, ["btcusdt"], server, db, until=until, ws_path="/stream")

    valid, bids, asks = final_book(db, EXCHANGE, "btcusdt")
    assert valid and (bids, asks) == reference(second_snapshot, after).top(20)
    assert (bids, asks) == truth.book.top(20)
    all_trades = [
        agg("BTCUSDT", 500, "0.05010", "1", False),
        agg("BTCUSDT", 501, "0.05000", "2", True),
        *missed,
        live,
    ]
    assert stored_trades(db, EXCHANGE) == taker_trades("btcusdt", all_trades)
    events = quality_events(db, EXCHANGE)
    backfills = [detail for _, kind, detail in events if kind == "backfill"]
    # One page from id 502; it holds 505 too, which also came live: stored once either way.
    assert len(backfills) == 1 and backfills[0]["count"] in (3, 4)
    assert server.rest_requests.count("/api/v3/aggTrades?symbol=BTCUSDT&fromId=502&limit=1000") == 1
    for kind in ("disconnect", "reconnect", "resync"):
        assert kind in [k for _, k, _ in events]
    assert server.connections == 2
    assert all(json.loads(m)["params"][0] == "btcusdt@aggTrade" for m in server.received)
