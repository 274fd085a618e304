"""`workbench record bitstamp` end to end against a local replay server.

Each scenario writes Bitstamp traffic as the venue documents it (``diff_order_book`` and
``live_trades`` frames, the REST ``order_book``) from one "true" history of the book: every
REST snapshot is that history at its ``microtimestamp``. Bitstamp numbers nothing, so the
only loss a recorder can see is a snapshot older than the stream it must continue; a
recorder that always syncs from a snapshot fetched after its current subscription ends with
the true book whatever the timing. The expected book is this file's own reading of the
frames (``json.loads`` + ``Decimal`` in :class:`RefBook`), sharing no code with the parser
or the feed.
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

EXCHANGE = "bitstamp"
T0 = 1763712000_000000  # µs
BOOK_PATH = "/api/v2/order_book/btcusd/"


def subscribed(channel: str) -> bytes:
    return json.dumps(
        {"event": "bts:subscription_succeeded", "channel": channel, "data": {}}
    ).encode()


SUBSCRIBED = [subscribed("diff_order_book_btcusd"), subscribed("live_trades_btcusd")]


class CurrentBook(dict[str, bytes | list[bytes]]):
    """REST answers for a server whose scripts stand for successive stretches of time: the
    order book endpoint answers with the book as of the latest WebSocket connection, as the
    real (current) endpoint would, however many times and whenever the recorder asks."""

    def __init__(self, path: str, per_connection: list[bytes]) -> None:
        super().__init__()
        self.path = path
        self.per_connection = per_connection
        self.server: ReplayServer | None = None
        self.answered: list[int] = []
        """The connection count at each answer."""

    def get(self, key: str, default: Any = None) -> Any:
        if key != self.path or self.server is None:
            return super().get(key, default)
        self.answered.append(self.server.connections)
        index = min(max(self.answered[-1], 1), len(self.per_connection)) - 1
        return self.per_connection[index]


class History:
    """The true book over time: diffs applied in microtimestamp order, snapshots taken from it."""

    def __init__(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        self.book = RefBook()
        for price, size in bids:
            self.book.set("bid", price, size)
        for price, size in asks:
            self.book.set("ask", price, size)
        self.micros = T0

    def diff(self, micros: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
        assert micros > self.micros
        for price, size in bids:
            self.book.set("bid", price, size)
        for price, size in asks:
            self.book.set("ask", price, size)
        self.micros = micros
        data = {"timestamp": str(micros // 1_000_000), "microtimestamp": str(micros)}
        return json.dumps(
            {
                "data": {**data, "bids": bids, "asks": asks},
                "channel": "diff_order_book_btcusd",
                "event": "data",
            }
        ).encode()

    def snapshot(self, micros: int | None = None) -> bytes:
        """The REST book now; ``micros`` later than the last diff: nothing changed since."""
        micros = micros or self.micros
        return json.dumps(
            {
                "timestamp": str(micros // 1_000_000),
                "microtimestamp": str(micros),
                "bids": [[str(p), str(s)] for p, s in sorted(self.book.bids.items(), reverse=True)],
                "asks": [[str(p), str(s)] for p, s in sorted(self.book.asks.items())],
            }
        ).encode()


def trade(trade_id: int, micros: int, price: str, amount: str, taker: int) -> bytes:
    data = {
        "id": trade_id, "timestamp": str(micros // 1_000_000), "amount": float(amount),
        "amount_str": amount, "price": float(price), "price_str": price, "type": taker,
        "microtimestamp": str(micros), "buy_order_id": 1900000000000000 + trade_id,
        "sell_order_id": 1900000000500000 + trade_id,
    }  # fmt: skip
    return json.dumps({"data": data, "channel": "live_trades_btcusd", "event": "trade"}).encode()


def reference(snapshot: bytes, frames: list[bytes]) -> RefBook:
    """Bitstamp's documented sync, read straight from the JSON: apply the diffs whose
    microtimestamp is after the snapshot's, in order."""
    snap = json.loads(snapshot)
    ref = RefBook()
    for price, size in snap["bids"]:
        ref.set("bid", price, size)
    for price, size in snap["asks"]:
        ref.set("ask", price, size)
    after = int(snap["microtimestamp"])
    for raw in frames:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue  # the malformed frame the recorder quarantines
        if msg.get("event") != "data" or int(msg["data"]["microtimestamp"]) <= after:
            continue
        for price, size in msg["data"]["bids"]:
            ref.set("bid", price, size)
        for price, size in msg["data"]["asks"]:
            ref.set("ask", price, size)
        after = int(msg["data"]["microtimestamp"])
    return ref


def taker_trades(symbol: str, frames: list[bytes]) -> list[tuple[Any, ...]]:
    """(symbol, id, price, size, TAKER side): ``type`` 0 is a buy, 1 a sell."""
    rows = []
    for raw in frames:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if msg.get("event") == "trade":
            t = msg["data"]
            side = "buy" if t["type"] == 0 else "sell"
            rows.append((symbol, str(t["id"]), float(t["price_str"]), float(t["amount_str"]), side))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def test_initial_sync_drops_diffs_the_snapshot_holds_and_records_taker_sides(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = History(
        [["84500", "0.50000000"], ["84499", "1.20000000"], ["84490", "3.00000000"]],
        [["84505", "0.40000000"], ["84510", "2.00000000"], ["84520", "0.75000000"]],
    )
    older = truth.diff(T0 + 100_000, [["84495", "9.00000000"]], [])
    same = truth.diff(T0 + 500_000, [["84495", "0.00000000"]], [["84505", "0.30000000"]])
    snapshot = truth.snapshot()  # microtimestamp T0 + 0.5 s: holds both diffs above
    frames = [
        *SUBSCRIBED,
        older,
        same,
        trade(351234567, T0 + 550_000, "84505", "0.01250000", 0),
        truth.diff(T0 + 600_000, [["84501", "0.20000000"]], [["84505", "0.00000000"]]),
        trade(351234568, T0 + 650_000, "84500", "0.50000000", 1),
        b'{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}',
        b'{"data": {"microtimestamp": "17637120007',
        b'{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription"}}',
        truth.diff(T0 + 700_000, [["84499", "0.00000000"]], [["84506", "1.00000000"]]),
    ]
    server = serve(servers, Script(frames), rest={BOOK_PATH: snapshot})
    db = tmp_path / "rec.duckdb"
    record_venue(EXCHANGE, ["BTCUSD"], server, db, until=REST_SYNCED)

    assert [json.loads(m) for m in server.received[:2]] == [
        {"event": "bts:subscribe", "data": {"channel": "diff_order_book_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "live_trades_btcusd"}},
    ]
    ref = reference(snapshot, frames)
    assert ref.top(20) == truth.book.top(20)
    valid, bids, asks = final_book(db, EXCHANGE, "BTCUSD")
    assert valid and (bids, asks) == ref.top(20)
    applied = query(db, "SELECT DISTINCT seq FROM book_deltas WHERE kind = 'delta' ORDER BY seq")
    assert applied == [(T0 + 600_000,), (T0 + 700_000,)]  # the two held ones were dropped
    assert stored_trades(db, EXCHANGE) == taker_trades("BTCUSD", frames)
    reasons = [reason for reason, _ in quarantined(db, EXCHANGE)]
    assert len(reasons) == 2 and "Bad subscription" in reasons[1]
    assert quality_kinds(db, EXCHANGE) == ["resync"]  # the initial sync, nothing else went wrong


def test_reconnect_rebuilds_the_book_from_a_fresh_snapshot(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = History([["100.10", "5"], ["100.00", "1"]], [["100.20", "3"], ["100.30", "2"]])
    truth.diff(T0 + 500_000, [["100.05", "1"]], [])
    first_snapshot = truth.snapshot()
    before = [
        *SUBSCRIBED,
        truth.diff(T0 + 1_000_000, [["100.10", "4"]], []),
        trade(2001, T0 + 1_100_000, "100.20", "0.5", 0),
        truth.diff(T0 + 1_500_000, [], [["100.25", "1"]]),
    ]
    truth.diff(T0 + 1_800_000, [["100.00", "0"]], [["100.20", "0"]])  # while disconnected
    held = truth.diff(T0 + 2_000_000, [["100.15", "7"]], [])  # conn 2, held by the snapshot
    second_snapshot = truth.snapshot(T0 + 2_200_000)
    after = [
        *SUBSCRIBED,
        held,
        truth.diff(T0 + 3_000_000, [["100.05", "0"]], [["100.25", "1.5"]]),
        trade(2002, T0 + 3_100_000, "100.10", "4", 1),
    ]
    rest = CurrentBook(BOOK_PATH, [first_snapshot, second_snapshot])
    server = serve(servers, Script(before, close_after=True), Script(after), rest=rest)
    rest.server = server
    db = tmp_path / "rec.duckdb"

    def rebuilt(committed: dict[str, int]) -> bool:
        """The second snapshot is in: disconnect, reconnect, its resync, and one more resync
        if the first connection's snapshot came in time (it usually comes after the close)."""
        early = any(n < 2 for n in rest.answered)
        return rest.answered[-1:] == [2] and at_least(quality_events=3 + early)(committed)

    record_venue(EXCHANGE, ["btcusd"], server, db, until=rebuilt)

    valid, bids, asks = final_book(db, EXCHANGE, "btcusd")
    ref = reference(second_snapshot, after)
    assert valid and (bids, asks) == ref.top(20) == truth.book.top(20)
    assert stored_trades(db, EXCHANGE) == taker_trades("btcusd", before + after)
    events = quality_kinds(db, EXCHANGE)
    for kind in ("disconnect", "reconnect", "resync"):
        assert kind in events
    assert "backfill" not in events  # Bitstamp has no id-paged trade history
    assert server.rest_requests.count(BOOK_PATH) >= 1
    assert server.connections == 2


def test_crossed_book_resyncs_from_rest_and_ends_valid(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = History([["50.00", "1"], ["49.90", "2"]], [["50.10", "1"], ["50.20", "2"]])
    contained = truth.diff(T0 + 500_000, [["49.95", "1"]], [])
    first_snapshot = truth.snapshot()  # holds the first buffered diff: nothing in between
    # A diff whose bid crosses the best ask: what it describes is not the book we hold.
    crossing = json.loads(truth.diff(T0 + 1_000_000, [["49.99", "1"]], []))
    crossing["data"]["bids"] = [["50.15", "1"]]
    frames = [
        *SUBSCRIBED,
        contained,
        json.dumps(crossing).encode(),
        truth.diff(T0 + 1_600_000, [], [["50.20", "0"], ["50.30", "4"]]),
    ]
    second_snapshot = truth.snapshot()  # fetched after everything above arrived
    server = serve(servers, Script(frames), rest={BOOK_PATH: [first_snapshot, second_snapshot]})
    db = tmp_path / "rec.duckdb"
    # resync, crossed and the resync from the second REST snapshot
    record_venue(EXCHANGE, ["btcusd"], server, db, until=at_least(quality_events=3))

    valid, bids, asks = final_book(db, EXCHANGE, "btcusd")
    assert valid and (bids, asks) == reference(second_snapshot, frames).top(20)
    assert (bids, asks) == truth.book.top(20)
    events = quality_events(db, EXCHANGE)
    crossed = [detail for _, kind, detail in events if kind == "crossed"]
    assert len(crossed) == 1 and crossed[0]["best_bid"] == 50.15
    assert [kind for _, kind, _ in events].count("resync") == 2  # initial + after crossing
    assert server.rest_requests.count(BOOK_PATH) == 2
