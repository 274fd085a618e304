"""Gemini market data v2 protocol: first book per subscription, deltas, trades, resubscribe."""

from __future__ import annotations

import json

import pytest

from workbench.errors import ProtocolError
from workbench.events import BookDelta, BookSnapshot, Heartbeat, SubscriptionRejected, Trade
from workbench.venues import get_venue
from workbench.venues.gemini import GeminiProtocol


def l2(changes: list[list[str]], sym: str = "BTCUSD", trades: list[dict] | None = None) -> bytes:
    msg: dict = {"type": "l2_updates", "symbol": sym, "changes": changes}
    if trades is not None:
        msg["trades"] = trades
        msg["auction_events"] = []
    return json.dumps(msg).encode()


def trade(tid: int, side: str, price: str, qty: str, sym: str = "BTCUSD") -> dict:
    return {
        "type": "trade",
        "symbol": sym,
        "event_id": tid + 1,
        "timestamp": 1560976400428,
        "price": price,
        "quantity": qty,
        "side": side,
        "tid": tid,
    }


FULL_BOOK = l2(
    [
        ["buy", "9122.04", "0.00121425"],
        ["buy", "9122.05", "0.5"],
        ["sell", "9122.09", "2"],
        ["sell", "9122.07", "0.98942292"],
    ],
    trades=[trade(2840140800042677, "sell", "9122.04", "0.0073173")],
)


def test_registered_as_unsequenced_without_checksums_or_backfill() -> None:
    assert get_venue("gemini") is GeminiProtocol
    assert not GeminiProtocol.sequenced and GeminiProtocol.snapshot_in_band
    assert GeminiProtocol.crossed_is_desync and not GeminiProtocol.numeric_trade_ids
    assert GeminiProtocol.stale_after > 5.0 and GeminiProtocol.heartbeat_interval == 0
    p = GeminiProtocol(["BTCUSD"])
    assert p.heartbeat_message() is None and p.trades_path("BTCUSD", 1) is None
    with pytest.raises(NotImplementedError):
        p.checksum("BTCUSD", None)  # type: ignore[arg-type]


def test_subscribe_and_resubscribe_messages() -> None:
    p = GeminiProtocol(["BTCUSD", "ethusd"])
    assert [json.loads(m) for m in p.subscribe_messages()] == [
        {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHUSD"]}]}
    ]
    assert [json.loads(m) for m in p.resubscribe_messages("ethusd")] == [
        {"type": "unsubscribe", "subscriptions": [{"name": "l2", "symbols": ["ETHUSD"]}]},
        {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["ETHUSD"]}]},
    ]


def test_first_update_is_the_full_book_best_first_with_its_recent_trades() -> None:
    snap, last = GeminiProtocol(["BTCUSD"]).parse(FULL_BOOK, 77)
    assert snap == BookSnapshot(
        "gemini",
        "BTCUSD",
        77,
        77,
        [(9122.05, 0.5), (9122.04, 0.00121425)],
        [(9122.07, 0.98942292), (9122.09, 2.0)],
    )
    assert last == Trade(
        "gemini", "BTCUSD", 1560976400428000, 77, 9122.04, 0.0073173, "sell", "2840140800042677"
    )


def test_later_updates_are_deltas_split_by_side() -> None:
    p = GeminiProtocol(["BTCUSD"])
    p.parse(FULL_BOOK, 1)
    (delta,) = p.parse(l2([["sell", "9160.20", "0.1921229751"], ["buy", "9122.04", "0"]]), 2)
    assert delta == BookDelta(
        "gemini", "BTCUSD", 2, 2, [(9122.04, 0.0)], [(9160.2, 0.1921229751)], None
    )


def test_each_symbol_gets_its_own_first_book() -> None:
    p = GeminiProtocol(["BTCUSD", "ETHUSD"])
    assert [type(e) for e in p.parse(FULL_BOOK, 1)] == [BookSnapshot, Trade]
    (eth,) = p.parse(l2([["buy", "1800.01", "3"]], sym="ETHUSD"), 2)
    assert isinstance(eth, BookSnapshot) and eth.symbol == "ETHUSD"
    (btc,) = p.parse(l2([["buy", "9122.04", "1"]]), 3)
    assert isinstance(btc, BookDelta)


def test_a_new_connection_expects_the_book_again() -> None:
    p = GeminiProtocol(["BTCUSD"])
    p.parse(FULL_BOOK, 1)
    p.subscribe_messages()
    assert isinstance(p.parse(l2([["buy", "9122.04", "1"]]), 2)[0], BookSnapshot)


def test_after_a_resubscribe_old_deltas_are_dropped_until_the_fresh_book() -> None:
    p = GeminiProtocol(["BTCUSD"])
    p.parse(FULL_BOOK, 1)
    p.resubscribe_messages("BTCUSD")
    assert p.parse(l2([["buy", "9100.00", "1"]]), 2) == []  # in flight before the unsubscribe
    assert [type(e) for e in p.parse(FULL_BOOK, 3)] == [BookSnapshot, Trade]
    assert [type(e) for e in p.parse(l2([["buy", "9100.00", "1"]]), 4)] == [BookDelta]


def test_an_update_carrying_recent_trades_is_always_a_full_book() -> None:
    p = GeminiProtocol(["BTCUSD"])
    p.parse(FULL_BOOK, 1)
    p.resubscribe_messages("BTCUSD")
    p.resubscribe_messages("BTCUSD")  # asked twice: two full books come back
    assert [type(e) for e in p.parse(FULL_BOOK, 2)] == [BookSnapshot, Trade]
    assert [type(e) for e in p.parse(FULL_BOOK, 3)] == [BookSnapshot, Trade]


def test_trade_message_keeps_the_taker_side_and_id() -> None:
    p = GeminiProtocol(["btcusd"])
    (buy,) = p.parse(json.dumps(trade(5, "buy", "9004.21000000", "0.09110000")).encode(), 3)
    assert buy == Trade("gemini", "btcusd", 1560976400428000, 3, 9004.21, 0.0911, "buy", "5")
    without_tid = trade(6, "sell", "9004.2", "1")
    del without_tid["tid"]
    (sell,) = p.parse(json.dumps(without_tid).encode(), 3)
    assert (sell.side, sell.trade_id) == ("sell", "7")  # event_id stands in


def test_heartbeat_and_auction_announcements() -> None:
    p = GeminiProtocol(["BTCUSD"])
    assert p.parse(b'{"type":"heartbeat","timestamp":1560976400428}', 9) == [
        Heartbeat("gemini", 1560976400428000, 9)
    ]
    for kind in ("auction_open", "auction_indicative", "auction_result"):
        raw = {"type": kind, "symbol": "BTCUSD", "time_ms": 1656100800000, "result": "failure"}
        assert p.parse(json.dumps(raw).encode(), 1) == []


def test_pair_splits_on_the_longest_known_quote() -> None:
    p = GeminiProtocol(["BTCUSD"])
    assert p.pair("BTCUSD") == ("BTC", "USD")
    assert p.pair("btcgusd") == ("BTC", "GUSD")
    assert p.pair("ETHBTC") == ("ETH", "BTC")
    assert p.pair("SOLUSDT") == ("SOL", "USDT")
    with pytest.raises(ValueError, match="FOOBAR"):
        p.pair("FOOBAR")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'{"type":"error","reason":"InvalidJson"}',
        b'{"type":"candles_1m_updates","symbol":"BTCUSD","changes":[]}',
        b'{"symbol":"BTCUSD","changes":[]}',
        b'{"type":"l2_updates","changes":[["buy","1","1"]]}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["bid","1","1"]]}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","1","1","x"]]}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":"none"}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","nan","1"]]}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","1"]]}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","0","1"]]}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","1","-2"]]}',
        b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["sell","inf","1"]]}',
        b'{"type":"trade","symbol":"BTCUSD","timestamp":1,"price":"1","quantity":"1","side":"buy"}',
        b'{"type":"trade","symbol":"BTCUSD","timestamp":1,"price":"1","quantity":"1",'
        b'"side":"auction","tid":1}',
        b'{"type":"trade","symbol":"BTCUSD","timestamp":1,"price":"1","quantity":"0",'
        b'"side":"buy","tid":1}',
        b'{"type":"trade","symbol":"BTCUSD","timestamp":"1","price":"1","quantity":"1",'
        b'"side":"buy","tid":1}',
        b'{"type":"heartbeat"}',
    ],
)
def test_malformed_or_unexpected_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        GeminiProtocol(["BTCUSD"]).parse(raw, 1)


def test_a_refused_request_is_a_rejection_in_geminis_words() -> None:
    raw = b'{"result":"error","reason":"InvalidSymbol","message":"Unknown symbol BTCXYZ"}'
    assert GeminiProtocol(["BTCUSD"]).parse(raw, 3) == [
        SubscriptionRejected(
            "gemini", [], 3, "venue error reply InvalidSymbol: Unknown symbol BTCXYZ"
        )
    ]
    assert GeminiProtocol.acknowledged_by_data  # no acknowledgement: the first book proves it
