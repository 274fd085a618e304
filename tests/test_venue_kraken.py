"""Kraken WebSocket v2 protocol: messages in, events out, checksums, sync state."""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_checksums import MATIC_ASKS, MATIC_BIDS
from workbench.core.book import OrderBook
from workbench.errors import DepthError, ProtocolError, UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues import get_venue
from workbench.venues.checksums import fixed_digits
from workbench.venues.kraken import KrakenProtocol, _LevelTexts
from workbench.venues.numbers import iso_us

TS = "2023-10-06T17:35:55.440295Z"
TS_US = iso_us(TS)


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def instrument(*pairs: tuple[str, int, int], kind: str = "snapshot") -> bytes:
    rows = [
        {
            "symbol": symbol,
            "base": symbol.split("/")[0],
            "quote": symbol.split("/")[1],
            "status": "online",
            "qty_precision": qty_precision,
            "qty_increment": 10.0**-qty_precision,
            "price_precision": price_precision,
            "cost_precision": 5,
            "marginable": False,
            "has_index": True,
            "cost_min": 0.5,
            "price_increment": 10.0**-price_precision,
            "qty_min": 4.0,
        }
        for symbol, price_precision, qty_precision in pairs
    ]
    return dumps({"channel": "instrument", "type": kind, "data": {"assets": [], "pairs": rows}})


def book(
    kind: str,
    symbol: str,
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    checksum: int,
    ts: str = TS,
) -> bytes:
    data = {
        "symbol": symbol,
        "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks],
        "checksum": checksum,
        "timestamp": ts,
    }
    return dumps({"channel": "book", "type": kind, "data": [data]})


MATIC_INSTRUMENT = instrument(("MATIC/USD", 4, 8))
MATIC_SNAPSHOT = book("snapshot", "MATIC/USD", MATIC_BIDS, MATIC_ASKS, 2439117997)
MATIC_UPDATE = book("update", "MATIC/USD", [(0.5657, 1098.3947558)], [], 2114181697)


def synced(symbols: list[str] | None = None) -> tuple[KrakenProtocol, OrderBook]:
    venue = KrakenProtocol(symbols or ["MATIC/USD"])
    assert venue.parse(MATIC_INSTRUMENT, 1) == []
    (snap,) = venue.parse(MATIC_SNAPSHOT, 2)
    assert isinstance(snap, BookSnapshot)
    ob = OrderBook()
    ob.apply_snapshot(snap.bids, snap.asks)
    return venue, ob


def test_registered_with_the_contract_settings() -> None:
    assert get_venue("kraken") is KrakenProtocol
    venue = KrakenProtocol(["BTC/USD"])
    assert venue.book_depth == 25
    assert (venue.sequenced, venue.snapshot_in_band, venue.numeric_trade_ids) == (
        False,
        True,
        False,
    )
    assert venue.stale_after > 1.0  # Kraken's heartbeat period
    assert venue.default_ws_url == "wss://ws.kraken.com/v2"


def test_subscribes_instrument_first_then_book_25_and_trades_with_snapshots() -> None:
    venue = KrakenProtocol(["BTC/USD", "xbt/eur"])
    messages = [json.loads(m) for m in venue.subscribe_messages()]
    assert [m["params"]["channel"] for m in messages] == ["instrument", "book", "trade"]
    assert messages[1]["params"] == {
        "channel": "book",
        "symbol": ["BTC/USD", "BTC/EUR"],
        "depth": 25,
        "snapshot": True,
    }
    assert messages[2]["params"]["snapshot"] is True
    assert len({m["req_id"] for m in messages}) == 3
    ping = json.loads(venue.heartbeat_message())
    assert ping["method"] == "ping" and ping["req_id"] not in {m["req_id"] for m in messages}


def test_documented_matic_book_verifies_with_the_instrument_precision() -> None:
    venue, ob = synced()
    assert venue.checksum("MATIC/USD", ob) == 2439117997
    (delta,) = venue.parse(MATIC_UPDATE, 3)
    assert delta == BookDelta(
        "kraken", "MATIC/USD", TS_US, 3, [(0.5657, 1098.3947558)], [], checksum=2114181697
    )
    ob.apply_delta(delta.bids, delta.asks)
    assert venue.checksum("MATIC/USD", ob) == 2114181697


def test_snapshot_levels_timestamps_and_checksum() -> None:
    venue = KrakenProtocol(["MATIC/USD"])
    venue.parse(MATIC_INSTRUMENT, 1)
    (snap,) = venue.parse(MATIC_SNAPSHOT, 7)
    assert isinstance(snap, BookSnapshot)
    assert (snap.symbol, snap.ts, snap.recv_ts, snap.checksum) == (
        "MATIC/USD",
        TS_US,
        7,
        2439117997,
    )
    assert snap.bids[0] == (0.5666, 4831.75496356) and snap.asks[-1] == (0.5677, 36304.0847022)


def test_before_the_precision_is_known_book_events_carry_no_checksum() -> None:
    venue = KrakenProtocol(["MATIC/USD"])
    (snap,) = venue.parse(MATIC_SNAPSHOT, 1)
    (delta,) = venue.parse(MATIC_UPDATE, 2)
    assert isinstance(snap, BookSnapshot) and isinstance(delta, BookDelta)
    assert snap.checksum is None and delta.checksum is None
    assert venue.unverified == {"MATIC/USD": 2}
    venue.parse(MATIC_INSTRUMENT, 3)
    (later,) = venue.parse(MATIC_UPDATE, 4)
    assert isinstance(later, BookDelta) and later.checksum == 2114181697


def test_an_update_before_the_snapshot_is_refused() -> None:
    venue = KrakenProtocol(["MATIC/USD"])
    venue.parse(MATIC_INSTRUMENT, 1)
    with pytest.raises(ProtocolError, match="before its snapshot"):
        venue.parse(MATIC_UPDATE, 2)


def test_resubscribe_asks_for_a_fresh_snapshot_and_waits_for_it() -> None:
    venue, _ = synced(["MATIC/USD"])
    messages = [json.loads(m) for m in venue.resubscribe_messages("MATIC/USD")]
    assert [m["method"] for m in messages] == ["unsubscribe", "subscribe"]
    assert messages[0]["params"] == {"channel": "book", "symbol": ["MATIC/USD"], "depth": 25}
    assert messages[1]["params"] == {
        "channel": "book",
        "symbol": ["MATIC/USD"],
        "depth": 25,
        "snapshot": True,
    }
    assert messages[0]["req_id"] != messages[1]["req_id"]
    with pytest.raises(ProtocolError, match="before its snapshot"):
        venue.parse(MATIC_UPDATE, 5)  # in flight from the old subscription
    (snap,) = venue.parse(MATIC_SNAPSHOT, 6)
    assert isinstance(snap, BookSnapshot)
    assert isinstance(venue.parse(MATIC_UPDATE, 7)[0], BookDelta)


def test_a_repeated_price_in_one_message_is_kept_in_order() -> None:
    venue, ob = synced()
    raw = book("update", "MATIC/USD", [(0.5655, 10.0), (0.5655, 0.0), (0.5655, 12.5)], [], 0)
    (delta,) = venue.parse(raw, 3)
    assert isinstance(delta, BookDelta)
    assert delta.bids == [(0.5655, 10.0), (0.5655, 0.0), (0.5655, 12.5)]
    ob.apply_delta(delta.bids, delta.asks)
    assert dict(ob.bids())[0.5655] == 12.5


def test_trades_keep_the_taker_side_and_map_the_symbol_back() -> None:
    venue = KrakenProtocol(["XBT/USD"])
    raw = dumps(
        {
            "channel": "trade",
            "type": "update",
            "data": [
                {
                    "symbol": "BTC/USD",
                    "side": "sell",
                    "price": 30000.1,
                    "qty": 0.00005,
                    "ord_type": "market",
                    "trade_id": 4665906,
                    "timestamp": "2023-09-25T07:49:37.708706Z",
                },
                {
                    "symbol": "BTC/USD",
                    "side": "buy",
                    "price": 30000.2,
                    "qty": 1.5,
                    "ord_type": "limit",
                    "trade_id": 4665907,
                    "timestamp": "2023-09-25T07:49:37.708706Z",
                },
            ],
        }
    )
    sell, buy = venue.parse(raw, 9)
    assert sell == Trade(
        "kraken",
        "XBT/USD",
        iso_us("2023-09-25T07:49:37.708706Z"),
        9,
        30000.1,
        0.00005,
        "sell",
        "4665906",
    )
    assert isinstance(buy, Trade) and (buy.side, buy.trade_id) == ("buy", "4665907")


def test_pairs_use_the_v2_asset_names() -> None:
    venue = KrakenProtocol(["XBT/USD"])
    assert venue.pair("XBT/USD") == ("BTC", "USD")
    assert venue.pair("ETH/EUR") == ("ETH", "EUR")
    assert venue.pair("XDG/USD") == ("DOGE", "USD")
    assert json.loads(venue.subscribe_messages()[1])["params"]["symbol"] == ["BTC/USD"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"channel":"heartbeat"}',
        b'{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",'
        b'"api_version":"v2","connection_id":12393906104898154338}]}',
        b'{"method":"pong","req_id":4,"time_in":"2023-09-24T14:10:23.799685Z",'
        b'"time_out":"2023-09-24T14:10:23.799703Z"}',
        b'{"method":"subscribe","result":{"channel":"trade","snapshot":true,'
        b'"symbol":"MATIC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.219022Z",'
        b'"time_out":"2023-10-06T17:35:55.219067Z","req_id":3}',
        b'{"method":"unsubscribe","result":{"channel":"book","depth":25,"symbol":"MATIC/USD"},'
        b'"success":true,"time_in":"2023-10-06T17:35:55.219022Z",'
        b'"time_out":"2023-10-06T17:35:55.219067Z","req_id":5}',
        instrument(("MATIC/USD", 4, 8), kind="update"),
    ],
)
def test_control_messages(raw: bytes) -> None:
    events = KrakenProtocol(["MATIC/USD"]).parse(raw, 5)
    assert events in ([], [Heartbeat("kraken", 5, 5)])


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1,2]",
        b'{"channel":"ticker","type":"update","data":[]}',
        b'{"method":"unsubscribe","error":"Subscription not found","success":false}',
        b'{"method":"surprise","success":true}',
        book("snapshot", "MATIC/USD", [(0.5, -1.0)], [], 1),
        book("snapshot", "MATIC/USD", [(0.0, 1.0)], [], 1),
        book("snapshot", "MATIC/USD", [(0.5, 1.0)], [], 2**32),
        book("snapshot", "MATIC/USD", [(0.5, 1.0)], [], 1, ts="yesterday"),
        b'{"channel":"book","type":"snapshot","data":[{"symbol":"MATIC/USD",'
        b'"bids":[{"price":"0.5","qty":1}],"asks":[],"checksum":1}]}',
        b'{"channel":"book","type":"snapshot","data":[{"symbol":"MATIC/USD","bids":[],"asks":[]}]}',
        b'{"channel":"book","type":"partial","data":[]}',
        b'{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"maker",'
        b'"price":1,"qty":1,"trade_id":1,"timestamp":"2023-09-25T07:49:37.708706Z"}]}',
        b'{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"buy",'
        b'"price":1,"qty":0,"trade_id":1,"timestamp":"2023-09-25T07:49:37.708706Z"}]}',
        b'{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"buy",'
        b'"price":1,"qty":1,"trade_id":"1","timestamp":"2023-09-25T07:49:37.708706Z"}]}',
        b'{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"MATIC/USD",'
        b'"price_precision":-1,"qty_precision":8}]}}',
    ],
)
def test_malformed_or_unexpected_messages_raise_protocol_error(raw: bytes) -> None:
    venue = KrakenProtocol(["MATIC/USD"])
    with pytest.raises(ProtocolError):
        venue.parse(raw, 1)


def test_a_symbol_is_subscribed_when_its_book_subscription_is_acknowledged() -> None:
    raw = (
        b'{"method":"subscribe","result":{"channel":"book","depth":25,"snapshot":true,'
        b'"symbol":"MATIC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.219022Z",'
        b'"time_out":"2023-10-06T17:35:55.219067Z","req_id":2}'
    )
    assert KrakenProtocol(["matic/usd"]).parse(raw, 5) == [Subscribed("kraken", ["matic/usd"], 5)]


def test_rejections_name_the_symbol_and_the_reason() -> None:
    raw = (
        b'{"method":"subscribe","error":"Currency pair not supported XXX/USD",'
        b'"success":false,"symbol":"XXX/USD","time_in":"2023-10-06T17:35:55.219022Z",'
        b'"time_out":"2023-10-06T17:35:55.219067Z"}'
    )
    assert KrakenProtocol(["BTC/USD", "XXX/USD"]).parse(raw, 1) == [
        SubscriptionRejected(
            "kraken",
            ["XXX/USD"],
            1,
            "kraken rejected subscribe: Currency pair not supported XXX/USD",
        )
    ]
    with pytest.raises(ProtocolError, match="kraken rejected unsubscribe"):
        KrakenProtocol(["XXX/USD"]).parse(raw.replace(b'"subscribe"', b'"unsubscribe"'), 1)


def test_timestamps_with_nanoseconds_or_no_fraction() -> None:
    venue = KrakenProtocol(["MATIC/USD"])
    venue.parse(MATIC_INSTRUMENT, 1)
    for ts in ("2023-10-06T17:35:55.440295123Z", "2023-10-06T17:35:55Z", TS):
        (snap,) = venue.parse(book("snapshot", "MATIC/USD", [(0.5, 1.0)], [], 1, ts=ts), 2)
        assert snap.ts == iso_us(ts)
    a = venue.parse(book("snapshot", "MATIC/USD", [(0.5, 1.0)], [], 1, ts=TS), 3)[0]
    b = venue.parse(
        book("snapshot", "MATIC/USD", [(0.5, 1.0)], [], 1, ts="2023-10-06T17:35:56.000001Z"), 4
    )[0]
    assert b.ts - a.ts == 1_000_000 - 440295 + 1


def test_a_precision_change_is_used_at_once() -> None:
    venue, ob = synced()
    before = venue.checksum("MATIC/USD", ob)
    venue.parse(instrument(("MATIC/USD", 5, 8), kind="update"), 3)
    after = venue.checksum("MATIC/USD", ob)
    assert after != before
    assert after == reference_checksum(ob, 5, 8)


def reference_checksum(ob: OrderBook, price_precision: int, qty_precision: int) -> int:
    """Kraken's rule, written from the docs with Decimal, sharing nothing with the venue."""

    def text(value: float, places: int) -> str:
        return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places))).replace(".", "")

    bids, asks = ob.top(10)
    parts = [
        text(p, price_precision).lstrip("0") + text(q, qty_precision).lstrip("0")
        for p, q in [*asks, *bids]
    ]
    return zlib.crc32("".join(parts).encode())


def test_checksum_stays_right_through_a_long_random_walk() -> None:
    """The per-level and per-side caches must never serve a stale text."""
    rng = random.Random(3)
    venue = KrakenProtocol(["ETH/USD"])
    venue.parse(instrument(("ETH/USD", 2, 8)), 1)
    bids = [(2000.0 - i * 0.01, 1.0 + i) for i in range(25)]
    asks = [(2000.01 + i * 0.01, 2.0 + i) for i in range(25)]
    (snap,) = venue.parse(book("snapshot", "ETH/USD", bids, asks, 0), 1)
    ob = OrderBook()
    ob.apply_snapshot(snap.bids, snap.asks)
    for step in range(3000):
        side = rng.choice("ba")
        cents = rng.randint(199_990, 200_000) if side == "b" else rng.randint(200_001, 200_011)
        qty = rng.choice([0.0, 0.5, 1.25, rng.randint(1, 10**9) / 10**8])
        if side == "b":
            ob.set_bid(cents / 100, qty)
        else:
            ob.set_ask(cents / 100, qty)
        ob.truncate(25)
        assert venue.checksum("ETH/USD", ob) == reference_checksum(ob, 2, 8), step


def fresh_checksum(ob: OrderBook, price_precision: int, qty_precision: int) -> int:
    """The venue's own rule with nothing cached: a new protocol instance per call."""
    venue = KrakenProtocol(["ETH/USD"])
    venue.parse(instrument(("ETH/USD", price_precision, qty_precision)), 1)
    return venue.checksum("ETH/USD", ob)


def rng_qty(rng: random.Random) -> float:
    """A quantity with at most 6 decimals, as Kraken sends at any qty precision used here."""
    return rng.randint(1, 10**9) / 10**6


def test_cached_checksum_equals_a_from_scratch_one_through_every_kind_of_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Messages of 1-4 changes inside and outside the top 10 on either side, deletes that
    shrink a side below 10 levels (down to one, and empty), truncation, sizes that repeat
    by value as new objects, a snapshot that replaces the book, a new book object and a
    precision change: after each one the cached checksum is the from-scratch one."""
    monkeypatch.setattr("workbench.venues.kraken._TEXT_CACHE_LIMIT", 16)  # clears often
    rng = random.Random(11)
    venue = KrakenProtocol(["ETH/USD"])
    precision = (2, 8)
    venue.parse(instrument(("ETH/USD", *precision)), 1)
    ob = OrderBook()
    ob.apply_snapshot(
        [(2000.0 - i * 0.01, 1.0 + i) for i in range(25)],
        [(2000.01 + i * 0.01, 2.0 + i) for i in range(25)],
    )
    sizes = [0.5, 1.25, 3.0, 10.0]
    for step in range(4000):
        roll = rng.random()
        if roll < 0.01:  # a fresh snapshot, sometimes with a thin or empty side
            ob.apply_snapshot(
                [(1999.9 - i * 0.01, rng.choice(sizes)) for i in range(rng.randint(0, 25))],
                [(2000.1 + i * 0.01, rng.choice(sizes)) for i in range(rng.randint(0, 25))],
            )
        elif roll < 0.015:  # the feed may hand over another book object with the same levels
            bids, asks = ob.bids(), ob.asks()
            ob = OrderBook()
            ob.apply_snapshot(bids, asks)
        elif roll < 0.02:
            precision = (rng.choice([2, 3, 4]), rng.choice([6, 8]))
            venue.parse(instrument(("ETH/USD", *precision), kind="update"), 1)
        else:
            for _ in range(rng.randint(1, 4)):
                is_bid = rng.random() < 0.5
                prices = ob.top_prices(25)[0 if is_bid else 1]
                pick = rng.random()
                if prices and pick < 0.3:  # delete, often inside the top 10
                    price = rng.choice(prices[:12])
                    qty = 0.0
                elif prices and pick < 0.7:  # resize: by value an old size, as a new float
                    price = rng.choice(prices)
                    qty = float(repr(rng.choice(sizes))) if rng.random() < 0.5 else rng_qty(rng)
                else:  # a new level anywhere, inside or outside the top 10
                    cents = (
                        rng.randint(199_950, 200_000) if is_bid else rng.randint(200_001, 200_050)
                    )
                    price, qty = cents / 100, rng_qty(rng)
                (ob.set_bid if is_bid else ob.set_ask)(price, qty)
            ob.truncate(25)
        expected = fresh_checksum(ob, *precision)
        assert expected == reference_checksum(ob, *precision), step
        assert venue.checksum("ETH/USD", ob) == expected, step


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=1e-9, max_value=1e7, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-9, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=10),
)
def test_level_texts_are_fixed_digits_exactly(
    price: float, qty: float, price_precision: int, qty_precision: int
) -> None:
    """The cache's inlined bytes formatting is ``fixed_digits``, digit for digit."""
    texts = _LevelTexts(price_precision, qty_precision)
    expected = fixed_digits(price, price_precision) + fixed_digits(qty, qty_precision)
    assert texts[price, qty] == expected.encode("ascii")
    assert texts[price, qty] == expected.encode("ascii")  # the cached copy
    assert b"e" not in texts[price, qty]


def test_updates_take_every_timestamp_form_on_the_fast_path() -> None:
    """The fast path keeps the current second and adds the µs: every form, a second
    boundary either way and an offset must still give the exact time."""
    venue, _ = synced()
    forms = [
        TS,
        "2023-10-06T17:35:55.440296Z",
        "2023-10-06T17:35:55.999999Z",
        "2023-10-06T17:35:56Z",  # the next second, at its first µs
        "2023-10-06T17:35:56.000001Z",
        "2023-10-06T17:35:55.440295123Z",
        "2023-10-06T17:35:55Z",
        "2023-10-06T17:35:55.440295+00:00",
        "2023-10-06T19:05:55.440295+01:30",  # TS again, in the cached second's bounds
        "2023-10-06T17:35:54.999999Z",  # back across a boundary
        "1969-12-31T23:59:59.999999Z",
        TS,
    ]
    for ts in forms:
        (delta,) = venue.parse(book("update", "MATIC/USD", [(0.5657, 1.0)], [], 1, ts=ts), 2)
        assert isinstance(delta, BookDelta) and delta.ts == iso_us(ts), ts
        assert delta.checksum == 1
    for bad in (
        "2023-10-06T17:35:55.4402x5Z",
        "2023-10-06T17:35:55.+40295Z",
        "2023-10-06T17:35:60Z",
        "2023-10-06T17:35:55.440295",  # RFC 3339 requires the offset
        "yesterday",
    ):
        with pytest.raises(ProtocolError):
            venue.parse(book("update", "MATIC/USD", [(0.5657, 1.0)], [], 1, ts=bad), 3)


def test_a_fraction_beyond_microseconds_is_rounded() -> None:
    venue, _ = synced()
    raw = book("update", "MATIC/USD", [(0.5657, 1.0)], [], 1, ts="2023-10-06T17:35:55.4402959Z")
    (delta,) = venue.parse(raw, 2)
    assert isinstance(delta, BookDelta) and delta.ts == TS_US + 1


def test_the_last_second_a_datetime_holds_is_still_a_time() -> None:
    venue, _ = synced()
    ts = "9999-12-31T23:59:59.5Z"
    for _ in range(2):
        (delta,) = venue.parse(book("update", "MATIC/USD", [(0.5657, 1.0)], [], 1, ts=ts), 2)
        assert isinstance(delta, BookDelta) and delta.ts == iso_us(ts)


def test_one_update_per_message_gives_what_the_general_path_gives() -> None:
    """The single-symbol fast path in ``parse`` and ``_book_event`` must agree: the same
    updates, sent one per message and all in one message, make the same events."""
    venue, _ = synced()
    updates = [
        {
            "symbol": "MATIC/USD",
            "bids": [{"price": 0.5657, "qty": 1.5}, {"price": 0.5656, "qty": 0.0}],
            "asks": [],
            "checksum": 11,
            "timestamp": TS,
        },
        {
            "symbol": "MATIC/USD",
            "bids": [],
            "asks": [{"price": 0.5669, "qty": 2.0}],
            "checksum": 12,
            "timestamp": "2023-10-06T17:35:56.000007Z",
        },
        {"symbol": "MATIC/USD", "bids": [], "asks": [], "checksum": 13},
    ]
    one_by_one = [
        event
        for data in updates
        for event in venue.parse(dumps({"channel": "book", "type": "update", "data": [data]}), 5)
    ]
    together = venue.parse(dumps({"channel": "book", "type": "update", "data": updates}), 5)
    assert one_by_one == together
    assert [(e.ts, e.checksum) for e in together if isinstance(e, BookDelta)] == [
        (TS_US, 11),
        (iso_us("2023-10-06T17:35:56.000007Z"), 12),
        (5, 13),
    ]
    assert together[0] == BookDelta(
        "kraken", "MATIC/USD", TS_US, 5, [(0.5657, 1.5), (0.5656, 0.0)], [], checksum=11
    )


def test_one_message_mixing_a_synced_and_an_unsubscribed_symbol() -> None:
    venue, _ = synced()
    data = [
        {"symbol": s, "bids": [{"price": 0.5, "qty": 1.0}], "asks": [], "checksum": 7}
        for s in ("MATIC/USD", "DOGE/USD")
    ]
    raw = dumps({"channel": "book", "type": "update", "data": data})
    ours, other = venue.parse(raw, 4)
    assert ours == BookDelta("kraken", "MATIC/USD", 4, 4, [(0.5, 1.0)], [], checksum=7)
    assert other == BookDelta("kraken", "DOGE/USD", 4, 4, [(0.5, 1.0)], [], checksum=None)
    assert venue.unverified == {}


@pytest.mark.parametrize("depth", [10, 25, 100, 500, 1000])
def test_each_offered_depth_is_subscribed_and_resubscribed(depth: int) -> None:
    venue = KrakenProtocol.at_depth(depth)(["BTC/USD"])
    assert venue.book_depth == depth and venue.name == "kraken"
    book = json.loads(venue.subscribe_messages()[1])["params"]
    assert book == {"channel": "book", "symbol": ["BTC/USD"], "depth": depth, "snapshot": True}
    unsub, sub = (json.loads(m)["params"] for m in venue.resubscribe_messages("BTC/USD"))
    assert unsub["depth"] == sub["depth"] == depth
    assert KrakenProtocol.book_depth == 25  # the registered class keeps its default


@pytest.mark.parametrize("depth", [1, 20, 50, 5000])
def test_a_depth_kraken_does_not_offer_is_refused_with_the_choices(depth: int) -> None:
    with pytest.raises(DepthError) as caught:
        KrakenProtocol.at_depth(depth)
    assert str(caught.value) == (
        f"kraken offers book depths 10, 25, 100, 500, 1000 (levels per side); got {depth}"
    )
    assert isinstance(caught.value, UsageError)
