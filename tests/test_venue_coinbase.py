"""Coinbase Advanced Trade protocol: envelope sequence rule, books, taker sides, resubscribe."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    Subscribed,
    SubscriptionRejected,
    SyncLost,
    Trade,
)
from workbench.venues import get_venue
from workbench.venues.coinbase import CoinbaseProtocol, rfc3339_us
from workbench.venues.numbers import iso_us

STAMP = "2023-02-09T20:32:50.714964855Z"
STAMP_US = 1675974770714964


def envelope(channel: str, seq: int, events: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "channel": channel,
            "client_id": "",
            "timestamp": STAMP,
            "sequence_num": seq,
            "events": events,
        }
    ).encode()


def level(side: str, price: str, qty: str, when: str = "2023-02-09T20:32:50.713541421Z") -> dict:
    return {"side": side, "event_time": when, "price_level": price, "new_quantity": qty}


def book(seq: int, kind: str, updates: list[dict[str, str]], product: str = "BTC-USD") -> bytes:
    return envelope("l2_data", seq, [{"type": kind, "product_id": product, "updates": updates}])


def trades(seq: int, kind: str, rows: list[tuple[str, str, str, str, str]]) -> bytes:
    return envelope(
        "market_trades",
        seq,
        [
            {
                "type": kind,
                "trades": [
                    {
                        "trade_id": i,
                        "product_id": "BTC-USD",
                        "price": p,
                        "size": s,
                        "side": d,
                        "time": t,
                    }
                    for i, p, s, d, t in rows
                ],
            }
        ],
    )


SNAPSHOT = book(
    1,
    "snapshot",
    [
        level("bid", "21921.3", "0.02", "1970-01-01T00:00:00Z"),
        level("bid", "21921.73", "0.06317902", "1970-01-01T00:00:00Z"),
        level("offer", "21921.9", "1.5", "1970-01-01T00:00:00Z"),
        level("offer", "21921.74", "0.000051", "1970-01-01T00:00:00Z"),
    ],
)


def fresh() -> CoinbaseProtocol:
    proto = CoinbaseProtocol(["BTC-USD"])
    proto.parse(envelope("subscriptions", 0, [{"subscriptions": {"level2": ["BTC-USD"]}}]), 1)
    return proto


def test_registered_and_subscribes_one_channel_per_message() -> None:
    assert get_venue("coinbase") is CoinbaseProtocol
    messages = [
        json.loads(m) for m in CoinbaseProtocol(["btc-usd", "ETH-USD"]).subscribe_messages()
    ]
    assert messages == [
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "market_trades"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]
    assert CoinbaseProtocol.sequenced is False and CoinbaseProtocol.snapshot_in_band
    assert CoinbaseProtocol(["BTC-USD"]).pair("BTC-USD") == ("BTC", "USD")


def test_snapshot_spells_asks_offer_and_is_sorted_best_first() -> None:
    (snap,) = fresh().parse(SNAPSHOT, 7)
    assert snap == BookSnapshot(
        "coinbase",
        "BTC-USD",
        STAMP_US,  # the snapshot's event_time is the epoch: the envelope time is used
        7,
        [(21921.73, 0.06317902), (21921.3, 0.02)],
        [(21921.74, 5.1e-05), (21921.9, 1.5)],
    )


def test_updates_are_absolute_and_one_delta_per_product_per_message() -> None:
    proto = fresh()
    proto.parse(SNAPSHOT, 1)
    msg = book(
        2,
        "update",
        [level("bid", "21921.73", "0"), level("offer", "21922.01", "2.5"), level("bid", "1", "3")],
    )
    (delta,) = proto.parse(msg, 9)
    assert delta == BookDelta(
        "coinbase",
        "BTC-USD",
        iso_us("2023-02-09T20:32:50.713541421Z"),
        9,
        [(21921.73, 0.0), (1.0, 3.0)],
        [(21922.01, 2.5)],
    )


def test_updates_before_the_first_snapshot_are_dropped() -> None:
    proto = fresh()
    assert proto.parse(book(1, "update", [level("bid", "1", "1")]), 1) == []
    proto.parse(book(2, "snapshot", [level("bid", "1", "1")]), 2)
    assert len(proto.parse(book(3, "update", [level("bid", "1", "2")]), 3)) == 1


def test_market_trades_report_the_taker_side_oldest_first() -> None:
    proto = fresh()
    snapshot = trades(
        1,
        "snapshot",
        [
            ("995098663", "68923.67", "0.00064", "SELL", "2026-04-07T00:28:58.544778Z"),
            ("995098662", "68923.67", "0.00123858", "BUY", "2026-04-07T00:28:58.250358Z"),
        ],
    )
    events = proto.parse(snapshot, 5)
    assert events == [
        Trade(
            "coinbase",
            "BTC-USD",
            iso_us("2026-04-07T00:28:58.250358Z"),
            5,
            68923.67,
            0.00123858,
            "sell",
            "995098662",
        ),
        Trade(
            "coinbase",
            "BTC-USD",
            iso_us("2026-04-07T00:28:58.544778Z"),
            5,
            68923.67,
            0.00064,
            "buy",
            "995098663",
        ),
    ]
    update = trades(2, "update", [("995098664", "68924.94", "0.5", "BUY", "2026-04-07T00:28:59Z")])
    (trade,) = proto.parse(update, 6)
    assert (trade.side, trade.trade_id, trade.ts) == ("sell", "995098664", 1775521739000000)


def test_heartbeats_and_acks() -> None:
    proto = fresh()
    beat = envelope("heartbeats", 1, [{"current_time": "x", "heartbeat_counter": 3049}])
    assert proto.parse(beat, 3) == [Heartbeat("coinbase", STAMP_US, 3)]
    beat = envelope("heartbeats", 2, [{"heartbeat_counter": "3050"}])  # seen as a string too
    assert proto.parse(beat, 4) == [Heartbeat("coinbase", STAMP_US, 4)]
    assert proto.parse(envelope("subscriptions", 3, [{"subscriptions": {}}]), 5) == []


def test_late_or_duplicate_sequence_numbers_are_ignored() -> None:
    proto = fresh()
    proto.parse(SNAPSHOT, 1)
    update = book(2, "update", [level("bid", "5", "1")])
    assert len(proto.parse(update, 2)) == 1
    assert proto.parse(update, 3) == []
    assert proto.parse(book(1, "update", [level("bid", "6", "1")]), 4) == []


def test_a_sequence_jump_loses_every_book_but_the_message_still_counts() -> None:
    proto = fresh()
    proto.parse(SNAPSHOT, 1)
    events = proto.parse(book(5, "update", [level("bid", "5", "1")]), 2)
    assert events[0] == SyncLost("coinbase", None, 2, "sequence", {"expected": 2, "got": 5})
    assert isinstance(events[1], BookDelta)
    assert len(proto.parse(book(6, "update", [level("bid", "5", "2")]), 3)) == 1


def test_a_message_that_fails_to_parse_counts_as_lost() -> None:
    proto = fresh()
    proto.parse(SNAPSHOT, 1)
    with pytest.raises(ProtocolError):
        proto.parse(book(2, "update", [level("bid", "abc", "1")]), 2)
    (lost, delta) = proto.parse(book(3, "update", [level("bid", "5", "1")]), 3)
    assert lost == SyncLost("coinbase", None, 3, "sequence", {"expected": 2, "got": 3})
    assert isinstance(delta, BookDelta)


def test_resubscribe_asks_for_a_fresh_book_and_drops_updates_until_it_arrives() -> None:
    proto = CoinbaseProtocol(["BTC-USD", "ETH-USD"])
    proto.parse(SNAPSHOT, 1)
    proto.parse(book(2, "snapshot", [level("bid", "1", "1")], "ETH-USD"), 2)
    messages = [json.loads(m) for m in proto.resubscribe_messages("BTC-USD")]
    assert messages == [
        {"type": action, "product_ids": ["BTC-USD"], "channel": channel}
        for channel in ("level2", "market_trades")
        for action in ("unsubscribe", "subscribe")
    ]
    assert proto.parse(book(3, "update", [level("bid", "5", "1")]), 3) == []  # in flight
    assert len(proto.parse(book(4, "update", [level("bid", "2", "1")], "ETH-USD"), 4)) == 1
    assert proto.parse(envelope("subscriptions", 5, [{"subscriptions": {}}]), 5) == []
    (snap,) = proto.parse(book(6, "snapshot", [level("offer", "9", "1")]), 6)
    assert isinstance(snap, BookSnapshot) and snap.asks == [(9.0, 1.0)]
    assert len(proto.parse(book(7, "update", [level("bid", "5", "1")]), 7)) == 1


def test_symbols_keep_the_users_spelling_and_usdc_reads_the_usd_book() -> None:
    proto = CoinbaseProtocol(["btc-usdc", "USDT-USDC"])
    (snap,) = proto.parse(book(1, "snapshot", [level("bid", "1", "1")], "BTC-USD"), 1)
    assert snap.symbol == "btc-usdc"
    (snap,) = proto.parse(book(2, "snapshot", [level("bid", "1", "1")], "BTC-USDC"), 2)
    assert snap.symbol == "btc-usdc"
    (snap,) = proto.parse(book(3, "snapshot", [level("bid", "1", "1")], "USDT-USDC"), 3)
    assert snap.symbol == "USDT-USDC"
    assert proto.parse(book(4, "snapshot", [level("bid", "1", "1")], "USDT-USD"), 4)[0].symbol == (
        "USDT-USD"  # not an alias of USDT-USDC: passed through, the feed quarantines it
    )
    both = CoinbaseProtocol(["BTC-USD", "BTC-USDC"])
    events = both.parse(book(1, "snapshot", [level("bid", "1", "1")], "BTC-USD"), 1)
    assert [e.symbol for e in events if isinstance(e, BookSnapshot)] == ["BTC-USD", "BTC-USDC"]


def test_update_times_on_the_fast_path_equal_the_general_parser() -> None:
    """Updates on the fast path in ``parse`` are timed by ``rfc3339_us``, cached per second:
    every form, a second boundary either way and an offset must give ``iso_us``'s time."""
    proto = fresh()
    proto.parse(SNAPSHOT, 1)
    forms = [
        "2023-02-09T20:32:50.713541421Z",
        "2023-02-09T20:32:50.713541999Z",  # truncated, not rounded
        "2023-02-09T20:32:50.999999999Z",
        "2023-02-09T20:32:51.000000001Z",  # the next second
        "2023-02-09T20:32:51Z",
        "2023-02-09T20:32:51.7Z",
        "2023-02-09T20:32:51.7149+01:00",  # 30 characters, but not the fast form
        "2023-02-09T20:32:51.714964855Z",
        "2023-02-09T20:32:49.000000000Z",  # back across a boundary
        "2023-02-09T20:32:50.713541421Z",
    ]
    for seq, when in enumerate(forms, start=2):
        (delta,) = proto.parse(book(seq, "update", [level("bid", "5", "1", when)]), seq)
        assert isinstance(delta, BookDelta) and delta.ts == iso_us(when), when
    for bad in (
        "2023-02-09T20:32:50.71354142xZ",
        "2023-02-09T20:32:50.-13541421Z",
        "2023-02-09T20:32:50.\u0667\u0661\u0663541421Z",  # non-ASCII digits
        "2023-02-09T20:32:50.713541421z",
    ):
        proto = fresh()  # a failed message counts as lost: start over for each
        proto.parse(SNAPSHOT, 1)
        proto.parse(book(2, "update", [level("bid", "5", "1", forms[0])]), 2)
        with pytest.raises(ProtocolError):
            proto.parse(book(3, "update", [level("bid", "5", "1", bad)]), 3)


def test_the_fast_path_and_the_general_path_make_the_same_delta() -> None:
    """The next message takes the fast path in ``parse``; the same update after a gap takes
    the general one: the deltas must be equal."""
    updates = [level("bid", "21921.73", "0"), level("offer", "21922.01", "2.5")]
    fast = fresh()
    fast.parse(SNAPSHOT, 1)
    (by_fast,) = fast.parse(book(2, "update", updates), 9)
    general = fresh()
    general.parse(SNAPSHOT, 1)
    lost, by_general = general.parse(book(3, "update", updates), 9)
    assert isinstance(lost, SyncLost)
    assert (
        by_fast
        == by_general
        == BookDelta(
            "coinbase",
            "BTC-USD",
            iso_us("2023-02-09T20:32:50.713541421Z"),
            9,
            [(21921.73, 0.0)],
            [(21922.01, 2.5)],
        )
    )


def test_a_product_feeding_two_symbols_updates_both() -> None:
    proto = CoinbaseProtocol(["BTC-USD", "BTC-USDC"])
    proto.parse(book(1, "snapshot", [level("bid", "1", "1")], "BTC-USD"), 1)
    events = proto.parse(book(2, "update", [level("bid", "1", "2")], "BTC-USD"), 2)
    assert [(e.symbol, e.bids) for e in events if isinstance(e, BookDelta)] == [
        ("BTC-USD", [(1.0, 2.0)]),
        ("BTC-USDC", [(1.0, 2.0)]),
    ]


def test_unknown_products_pass_through_for_the_feed_to_quarantine() -> None:
    proto = fresh()
    events = proto.parse(book(1, "update", [level("bid", "1", "1")], "DOGE-USD"), 1)
    assert [e.symbol for e in events if isinstance(e, BookDelta)] == ["DOGE-USD"]


def test_prices_are_the_exact_floats_of_the_wire_decimals() -> None:
    proto = fresh()
    rng = random.Random(7)
    wire = [f"{rng.randint(1, 10**9)}.{rng.randint(0, 10**8):08d}" for _ in range(200)]
    msg = book(1, "snapshot", [level("bid", p, p) for p in wire])
    (snap,) = proto.parse(msg, 1)
    assert isinstance(snap, BookSnapshot)
    assert sorted(snap.bids) == sorted((float(p), float(p)) for p in wire)


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-09T20:32:50.714964855Z",
        "2023-02-09T20:32:50.714964Z",
        "2023-02-09T20:32:50.7Z",
        "2023-02-09T20:32:50.999999999Z",
        "2023-02-09T20:32:50.000000001Z",
        "2023-02-09T20:32:50Z",
        "1970-01-01T00:00:00Z",
        "2019-08-14T20:42:27.265+00:00",
        "2019-08-14T20:42:27.265",
    ],
)
def test_fast_timestamps_equal_the_general_parser(text: str) -> None:
    assert rfc3339_us(text) == iso_us(text)
    assert rfc3339_us(text) == iso_us(text)  # again, from the cached second


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-09T20:32:50.Z",
        "2023-02-09T20:32:50.1_2Z",
        "2023-02-09T20:32:50.71354142xZ",
        "2023-02-09T20:32:50.-13541421Z",
        "2023-02-30T20:32:50.1Z",
        "x",
    ],
)
def test_bad_timestamps_raise_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):
        rfc3339_us(text)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1,2]",
        b'{"channel":"ticker","timestamp":"' + STAMP.encode() + b'","sequence_num":1,"events":[]}',
        b'{"channel":"l2_data","timestamp":"' + STAMP.encode() + b'","events":[]}',
        book(1, "update", [level("ask", "1", "1")]),
        book(1, "update", [level("bid", "nan", "1")]),
        book(1, "update", [level("bid", "inf", "1")]),
        book(1, "update", [level("bid", "1e400", "1")]),
        book(1, "update", [level("bid", "0", "1")]),
        book(1, "update", [level("bid", "1", "-1")]),
        book(1, "update", [level("bid", " 1", "1")]),
        book(1, "delta", [level("bid", "1", "1")]),
        envelope("l2_data", 1, [{"type": "update", "product_id": "BTC-USD"}]),
        trades(1, "update", [("1", "1", "0", "BUY", STAMP)]),
        trades(1, "update", [("1", "1", "1", "buy", STAMP)]),
        trades(1, "update", [("1", "1", "1", "BUY", "yesterday")]),
        envelope("market_trades", 1, [{"type": "update", "trades": [{"trade_id": 1}]}]),
    ],
)
def test_malformed_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        fresh().parse(raw, 1)  # sequence_num 1 follows the ack's 0


def test_venue_error_replies_reject_the_subscription_with_the_reason() -> None:
    assert fresh().parse(b'{"type":"error","message":"failure to subscribe"}', 1) == [
        SubscriptionRejected("coinbase", [], 1, "venue error reply: failure to subscribe")
    ]


def test_a_symbol_is_subscribed_once_a_product_feeding_it_is_listed_on_level2() -> None:
    proto = CoinbaseProtocol(["btc-usdc", "ETH-USD"])
    held = {"market_trades": ["ETH-USD"], "level2": ["BTC-USD"]}  # USDC reads the USD book
    assert proto.parse(envelope("subscriptions", 0, [{"subscriptions": held}]), 3) == [
        Subscribed("coinbase", ["btc-usdc"], 3)
    ]
    held["level2"].append("ETH-USD")
    assert proto.parse(envelope("subscriptions", 1, [{"subscriptions": held}]), 4) == [
        Subscribed("coinbase", ["btc-usdc", "ETH-USD"], 4)
    ]


def replay(proto: CoinbaseProtocol, messages: list[bytes]) -> list[MarketEvent]:
    return [e for i, m in enumerate(messages) for e in proto.parse(m, i)]


def test_a_whole_session_in_order() -> None:
    session = [
        envelope("subscriptions", 0, [{"subscriptions": {"level2": ["BTC-USD"]}}]),
        SNAPSHOT,
        trades(2, "snapshot", [("2", "1", "1", "BUY", STAMP), ("1", "1", "1", "SELL", STAMP)]),
        envelope("heartbeats", 3, [{"heartbeat_counter": 1}]),
        book(4, "update", [level("bid", "21921.73", "0")]),
    ]
    kinds = [type(e).__name__ for e in replay(CoinbaseProtocol(["BTC-USD"]), session)]
    assert kinds == ["Subscribed", "BookSnapshot", "Trade", "Trade", "Heartbeat", "BookDelta"]
