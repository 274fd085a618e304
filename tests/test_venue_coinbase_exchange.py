"""Coinbase Exchange legacy feed: in-band books, maker → taker sides, id-bounded REST pages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues import get_venue
from workbench.venues.coinbase_exchange import CoinbaseExchangeProtocol
from workbench.venues.numbers import iso_us

SNAPSHOT = (
    b'{"type":"snapshot","product_id":"BTC-USD","bids":[["10101.10","0.45054140"],'
    b'["10101.50","1"]],"asks":[["10102.55","0.57753524"],["10102.00","0.000051"]]}'
)


def update(*changes: tuple[str, str, str], product: str = "BTC-USD") -> bytes:
    body = {
        "type": "l2update",
        "product_id": product,
        "time": "2019-08-14T20:42:27.265Z",
        "changes": [list(c) for c in changes],
    }
    return json.dumps(body).encode()


def match(trade_id: int, side: str, kind: str = "match", **extra: Any) -> bytes:
    body = {
        "type": kind,
        "trade_id": trade_id,
        "sequence": 50 + trade_id,
        "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
        "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
        "time": "2014-11-07T08:19:27.028459Z",
        "product_id": "BTC-USD",
        "size": "5.23512",
        "price": "400.23",
        "side": side,
        **extra,
    }
    return json.dumps(body).encode()


def synced() -> CoinbaseExchangeProtocol:
    proto = CoinbaseExchangeProtocol(["BTC-USD"])
    proto.parse(SNAPSHOT, 1)
    return proto


def test_registered_and_subscribes_book_trades_and_heartbeats_at_once() -> None:
    assert get_venue("coinbase-exchange") is CoinbaseExchangeProtocol
    (message,) = CoinbaseExchangeProtocol(["btc-usd", "ETH-EUR"]).subscribe_messages()
    assert json.loads(message) == {
        "type": "subscribe",
        "product_ids": ["BTC-USD", "ETH-EUR"],
        "channels": ["level2_batch", "matches", "heartbeat"],
    }
    cls = CoinbaseExchangeProtocol
    assert cls.numeric_trade_ids and not cls.sequenced and cls.snapshot_in_band
    assert cls(["ETH-EUR"]).pair("ETH-EUR") == ("ETH", "EUR")


def test_snapshot_is_sorted_best_first() -> None:
    (snap,) = CoinbaseExchangeProtocol(["BTC-USD"]).parse(SNAPSHOT, 7)
    assert snap == BookSnapshot(
        "coinbase-exchange",
        "BTC-USD",
        7,  # the snapshot carries no time: receipt time stands in
        7,
        [(10101.5, 1.0), (10101.1, 0.4505414)],
        [(10102.0, 5.1e-05), (10102.55, 0.57753524)],
    )


def test_l2update_changes_are_absolute_and_split_by_side() -> None:
    msg = update(("buy", "10101.80000000", "0.162567"), ("sell", "10102.00", "0"))
    (delta,) = synced().parse(msg, 9)
    assert delta == BookDelta(
        "coinbase-exchange",
        "BTC-USD",
        iso_us("2019-08-14T20:42:27.265Z"),
        9,
        [(10101.8, 0.162567)],
        [(10102.0, 0.0)],
    )


def test_updates_before_the_snapshot_are_dropped() -> None:
    proto = CoinbaseExchangeProtocol(["BTC-USD"])
    assert proto.parse(update(("buy", "1", "1")), 1) == []
    proto.parse(SNAPSHOT, 2)
    assert len(proto.parse(update(("buy", "1", "1")), 3)) == 1


@pytest.mark.parametrize(("maker", "taker"), [("sell", "buy"), ("buy", "sell")])
def test_match_side_is_the_makers_so_the_taker_did_the_opposite(maker: str, taker: str) -> None:
    (trade,) = synced().parse(match(10, maker), 4)
    assert trade == Trade(
        "coinbase-exchange",
        "BTC-USD",
        iso_us("2014-11-07T08:19:27.028459Z"),
        4,
        400.23,
        5.23512,
        taker,  # type: ignore[arg-type]
        "10",
    )


def test_last_match_is_a_trade_and_match_sequence_is_not_gap_checked() -> None:
    proto = synced()
    (first,) = proto.parse(match(10, "buy", "last_match"), 1)
    (second,) = proto.parse(match(11, "buy", sequence=9_999_999), 2)  # product-wide sequence
    assert (first.trade_id, second.trade_id) == ("10", "11")
    assert first.seq is None and second.seq is None


def test_heartbeat_and_subscriptions_ack() -> None:
    beat = (
        b'{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",'
        b'"time":"2014-11-07T08:19:28.464459Z"}'
    )
    assert synced().parse(beat, 3) == [
        Heartbeat("coinbase-exchange", iso_us("2014-11-07T08:19:28.464459Z"), 3)
    ]
    ack = b'{"type":"subscriptions","channels":[{"name":"level2_batch","product_ids":["BTC-USD"]}]}'
    assert synced().parse(ack, 3) == [Subscribed("coinbase-exchange", ["BTC-USD"], 3)]
    others = b'{"type":"subscriptions","channels":[{"name":"matches","product_ids":["BTC-USD"]}]}'
    assert synced().parse(others, 3) == []  # only the book channel makes a symbol subscribed


def test_resubscribe_asks_for_a_fresh_book_and_drops_updates_until_it_arrives() -> None:
    proto = synced()
    messages = [json.loads(m) for m in proto.resubscribe_messages("BTC-USD")]
    assert messages == [
        {"type": "unsubscribe", "product_ids": ["BTC-USD"], "channels": ["level2_batch"]},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["level2_batch"]},
    ]
    assert proto.parse(update(("buy", "1", "1")), 1) == []  # still in flight
    assert len(proto.parse(match(12, "sell"), 2)) == 1  # trades are unaffected
    proto.parse(SNAPSHOT, 3)
    assert len(proto.parse(update(("buy", "1", "1")), 4)) == 1


def test_symbols_keep_the_users_spelling() -> None:
    proto = CoinbaseExchangeProtocol(["btc-usd"])
    (snap,) = proto.parse(SNAPSHOT, 1)
    assert snap.symbol == "btc-usd"
    (delta,) = proto.parse(update(("buy", "1", "1"), product="ETH-USD"), 2)
    assert delta.symbol == "ETH-USD"  # unknown: passed through, the feed quarantines it


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"type":"ticker","product_id":"BTC-USD"}',
        update(("bid", "1", "1")),
        update(("buy", "nan", "1")),
        update(("buy", "1", "-2")),
        update(("buy", "1", "1e999")),
        update(("buy", "0", "1")),
        b'{"type":"l2update","product_id":"BTC-USD","changes":[]}',
        match(1, "maker"),
        match(1, "buy", size="0"),
        match(1, "buy").replace(b'"trade_id": 1', b'"trade_id": "one"'),
        match(1, "buy", time="yesterday"),
        b'{"type":"snapshot","product_id":"BTC-USD","bids":[["1"]],"asks":[]}',
    ],
)
def test_malformed_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        synced().parse(raw, 1)


def test_venue_error_replies_reject_the_products_they_name_with_the_reason() -> None:
    raw = b'{"type":"error","message":"Failed to subscribe","reason":"level2 requires auth"}'
    assert synced().parse(raw, 1) == [
        SubscriptionRejected(
            "coinbase-exchange",
            [],
            1,
            "venue error reply: Failed to subscribe: level2 requires auth",
        )
    ]
    proto = CoinbaseExchangeProtocol(["BTC-USD", "eth-xyz"])
    raw = b'{"type":"error","message":"Failed to subscribe","reason":"ETH-XYZ is not a product"}'
    (event,) = proto.parse(raw, 2)
    assert isinstance(event, SubscriptionRejected) and event.symbols == ["eth-xyz"]


# -- REST backfill ------------------------------------------------------------------------------


def rest_trade(trade_id: int, side: str = "buy") -> dict[str, Any]:
    return {
        "time": "2014-11-07T22:19:28.578544Z",
        "trade_id": trade_id,
        "price": "10.00000000",
        "size": "0.01000000",
        "side": side,
    }


def coinbase_trades(path: str, history: range) -> bytes:
    """What Coinbase answers: ``after=C`` → trades with id < C, newest first, ``limit`` max."""
    query = parse_qs(urlsplit(path).query)
    assert set(query) == {"after", "limit"}  # only the unambiguous cursor is used
    cursor, limit = int(query["after"][0]), int(query["limit"][0])
    ids = [i for i in reversed(history) if i < cursor][:limit]
    return json.dumps([rest_trade(i) for i in ids]).encode()


def test_a_trades_page_is_bounded_by_ids_and_ascending() -> None:
    proto = CoinbaseExchangeProtocol(["BTC-USD"])
    path = proto.trades_path("BTC-USD", 102)
    assert path == "/products/BTC-USD/trades?after=1103&limit=1000"
    body = json.dumps([rest_trade(i, "sell") for i in range(107, 90, -1)]).encode()
    page = proto.parse_trades(body, "BTC-USD", 5)
    assert [t.trade_id for t in page] == ["103", "104", "105", "106", "107"]
    assert page[0] == Trade(
        "coinbase-exchange",
        "BTC-USD",
        iso_us("2014-11-07T22:19:28.578544Z"),
        5,
        10.0,
        0.01,
        "buy",  # maker sold
        "103",
    )


def backfill(proto: CoinbaseExchangeProtocol, after: int, history: range) -> list[int]:
    """The feed's paging loop: while a page is full, continue after its last (highest) id."""
    got: list[int] = []
    for _ in range(20):
        page = proto.parse_trades(
            coinbase_trades(proto.trades_path("BTC-USD", after), history), "BTC-USD", 0
        )
        got += [int(t.trade_id) for t in page]
        if len(page) < proto.trades_page_size:
            return got
        after = int(page[-1].trade_id)
    raise AssertionError("the paging never ended")


@pytest.mark.parametrize(
    ("after", "history"),
    [
        (102, range(1, 108)),
        (102, range(1, 2500)),
        (1000, range(1, 3001)),  # the newest trade ends a full page exactly
        (2999, range(1, 3000)),  # nothing new
        (5, range(1, 1006)),
    ],
)
def test_paging_fetches_every_missing_trade_once_and_ends(after: int, history: range) -> None:
    got = backfill(CoinbaseExchangeProtocol(["BTC-USD"]), after, history)
    assert got == list(range(after + 1, history.stop))


def test_rest_pages_need_their_request_and_a_valid_body() -> None:
    proto = CoinbaseExchangeProtocol(["BTC-USD"])
    with pytest.raises(ProtocolError, match="no trades_path asked for"):
        proto.parse_trades(b"[]", "BTC-USD", 0)
    proto.trades_path("BTC-USD", 1)
    for body in (b'{"message":"NotFound"}', b'[{"trade_id":2}]', b"[" + b'"x"' + b"]"):
        with pytest.raises(ProtocolError):
            proto.parse_trades(body, "BTC-USD", 0)
    bad_side = json.dumps([rest_trade(2, "maker")]).encode()
    with pytest.raises(ProtocolError):
        proto.parse_trades(bad_side, "BTC-USD", 0)
