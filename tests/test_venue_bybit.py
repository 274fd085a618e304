"""Bybit v5 spot protocol: wire messages in, normalized events out, and its sync signals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.errors import DepthError, ProtocolError
from workbench.events import BookDelta, BookSnapshot, Subscribed, SubscriptionRejected, Trade
from workbench.venues import get_venue
from workbench.venues.bybit import BybitProtocol


def book(
    kind: str, u: int, bids: list[list[str]], asks: list[list[str]], sym: str = "BTCUSDT"
) -> bytes:
    return json.dumps(
        {
            "topic": f"orderbook.50.{sym}",
            "type": kind,
            "ts": 1687940967466,
            "data": {"s": sym, "b": bids, "a": asks, "u": u, "seq": 66544703342 + u},
            "cts": 1687940967464,
        }
    ).encode()


def trades(*rows: tuple[str, str, str, str], sym: str = "BTCUSDT") -> bytes:
    data = [
        {"T": 1672304486865, "s": sym, "S": side, "v": v, "p": p, "i": i, "BT": False}
        for side, p, v, i in rows
    ]
    return json.dumps(
        {"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": 1672304486868, "data": data}
    ).encode()


def test_registered_with_the_documented_sync_settings() -> None:
    assert get_venue("bybit") is BybitProtocol
    assert BybitProtocol.sequenced and BybitProtocol.seq_rule == "contiguous"
    assert BybitProtocol.snapshot_in_band and BybitProtocol.book_depth == 50
    assert not BybitProtocol.numeric_trade_ids
    assert BybitProtocol.stale_after > BybitProtocol.heartbeat_interval == 20.0
    p = BybitProtocol(["BTCUSDT"])
    assert p.trades_path("BTCUSDT", 1) is None and p.snapshot_path("BTCUSDT") is None


def test_subscribe_sends_book_and_trade_topics_ten_per_request() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT"]
    messages = [json.loads(m) for m in BybitProtocol(symbols).subscribe_messages()]
    assert [m["op"] for m in messages] == ["subscribe", "subscribe"]
    assert [len(m["args"]) for m in messages] == [10, 2]
    topics = messages[0]["args"] + messages[1]["args"]
    assert topics[:2] == ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
    assert len(set(topics)) == 12


def test_heartbeat_and_resubscribe_messages() -> None:
    p = BybitProtocol(["BTCUSDT"])
    assert json.loads(p.heartbeat_message()) == {"op": "ping"}
    assert [json.loads(m) for m in p.resubscribe_messages("BTCUSDT")] == [
        {"op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]},
        {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]},
    ]


def test_snapshot_and_delta_carry_u_as_seq_and_decimal_exact_levels() -> None:
    p = BybitProtocol(["BTCUSDT"])
    (snap,) = p.parse(
        book("snapshot", 100, [["30247.20", "30.028"]], [["30248.70", "0.00005100"]]), 9
    )
    assert snap == BookSnapshot(
        "bybit", "BTCUSDT", 1687940967464000, 9, [(30247.2, 30.028)], [(30248.7, 5.1e-05)], 100
    )
    (delta,) = p.parse(book("delta", 101, [["30240.00", "0"]], [["30249.30", "0.892"]]), 10)
    assert delta == BookDelta(
        "bybit", "BTCUSDT", 1687940967464000, 10, [(30240.0, 0.0)], [(30249.3, 0.892)], 101
    )
    assert delta.prev_seq is None  # contiguous: the feed expects u = last + 1


@given(
    st.decimals(min_value="0.00000001", max_value="99999999", places=8, allow_nan=False),
    st.decimals(min_value="0", max_value="99999999", places=8, allow_nan=False),
)
def test_level_values_equal_float_of_the_wire_text(price: object, size: object) -> None:
    p_text, s_text = f"{price:f}", f"{size:f}"
    (delta,) = BybitProtocol(["BTCUSDT"]).parse(book("delta", 1, [[p_text, s_text]], []), 1)
    assert delta.bids == [(float(p_text), float(s_text))]


def test_a_skipped_u_is_visible_to_the_feed_as_a_seq_jump() -> None:
    p = BybitProtocol(["BTCUSDT"])
    p.parse(book("snapshot", 100, [["1.0", "1"]], [["2.0", "1"]]), 1)
    seqs = [
        e.seq
        for u in (101, 102, 104)
        for e in p.parse(book("delta", u, [], [["2.0", "3"]]), 2)
        if isinstance(e, BookDelta)
    ]
    assert seqs == [101, 102, 104]


def test_exchange_time_falls_back_to_ts_without_cts() -> None:
    raw = json.loads(book("delta", 5, [], []))
    del raw["cts"]
    (delta,) = BybitProtocol(["BTCUSDT"]).parse(json.dumps(raw).encode(), 1)
    assert delta.ts == 1687940967466000


def test_events_use_the_symbol_spelling_the_user_passed() -> None:
    p = BybitProtocol(["btcusdt"])
    assert json.loads(p.subscribe_messages()[0])["args"] == [
        "orderbook.50.BTCUSDT",
        "publicTrade.BTCUSDT",
    ]
    (snap,) = p.parse(book("snapshot", 1, [], []), 1)
    (trade,) = p.parse(trades(("Buy", "1", "1", "7")), 1)
    assert snap.symbol == trade.symbol == "btcusdt"
    (other,) = p.parse(book("snapshot", 1, [], [], sym="ETHUSDT"), 1)
    assert other.symbol == "ETHUSDT"  # unknown: passed through for the feed to quarantine


def test_trades_keep_the_taker_side_and_string_ids() -> None:
    events = BybitProtocol(["BTCUSDT"]).parse(
        trades(
            ("Buy", "16578.50", "0.001", "2290000000007764263"), ("Sell", "16578.00", "2", "x-1")
        ),
        5,
    )
    assert events == [
        Trade(
            "bybit", "BTCUSDT", 1672304486865000, 5, 16578.5, 0.001, "buy", "2290000000007764263"
        ),
        Trade("bybit", "BTCUSDT", 1672304486865000, 5, 16578.0, 2.0, "sell", "x-1"),
    ]


def test_op_replies_produce_no_events() -> None:
    p = BybitProtocol(["BTCUSDT"])
    for reply in (
        b'{"success":true,"ret_msg":"pong","conn_id":"0970e817","op":"ping"}',
        b'{"success":true,"ret_msg":"","conn_id":"a","req_id":"","op":"subscribe"}',
        b'{"success":true,"ret_msg":"","conn_id":"a","req_id":"","op":"unsubscribe"}',
        b'{"req_id":"","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0-1b"}',
    ):
        assert p.parse(reply, 1) == []


def test_a_mid_stream_snapshot_after_a_restart_is_a_plain_snapshot_at_its_u() -> None:
    p = BybitProtocol(["BTCUSDT"])
    p.parse(book("snapshot", 500, [["1.0", "1"]], [["2.0", "1"]]), 1)
    p.parse(book("delta", 501, [["1.0", "2"]], []), 2)
    (snap,) = p.parse(book("snapshot", 1, [["1.5", "1"]], [["2.0", "1"]]), 3)
    assert isinstance(snap, BookSnapshot) and snap.seq == 1 and snap.bids == [(1.5, 1.0)]
    (delta,) = p.parse(book("delta", 2, [], []), 4)
    assert isinstance(delta, BookDelta) and delta.seq == 2


def test_pair_splits_on_the_longest_known_quote() -> None:
    p = BybitProtocol(["BTCUSDT"])
    assert p.pair("BTCUSDT") == ("BTC", "USDT")
    assert p.pair("ETHBTC") == ("ETH", "BTC")
    assert p.pair("ETHFDUSD") == ("ETH", "FDUSD")
    assert p.pair("solusdc") == ("SOL", "USDC")
    with pytest.raises(ValueError, match="XYZABC"):
        p.pair("XYZABC")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[],"a":[],"u":"7"}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[]}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[],"a":[],"u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"reset","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[],"a":[],"u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[["abc","1"]],"a":[],"u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[["1","-1"]],"a":[],"u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[["1","1","1"]],"a":[],"u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[],"a":[["inf","1"]],"u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[],"a":"none","u":7}}',
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        b'"data":{"s":"BTCUSDT","b":[["nan","1"]],"a":[],"u":7}}',
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,'
        b'"data":[{"T":1,"s":"BTCUSDT","S":"Maker","v":"1","p":"1","i":"1"}]}',
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,'
        b'"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0","p":"1","i":"1"}]}',
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,'
        b'"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1","p":"1","i":1}]}',
        b'{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1}',
        b'{"hello":"world"}',
    ],
)
def test_malformed_or_unexpected_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        BybitProtocol(["BTCUSDT"]).parse(raw, 1)


def reply(success: bool, ret_msg: str = "") -> bytes:
    body = {"success": success, "ret_msg": ret_msg, "conn_id": "c1", "op": "subscribe"}
    return json.dumps(body).encode()


def test_subscribe_replies_answer_the_requests_in_the_order_they_were_sent() -> None:
    symbols = [f"C{i}USDT" for i in range(7)]  # 14 topics: two requests of 10 and 4
    p = BybitProtocol(symbols)
    assert len(p.subscribe_messages()) == 2
    assert p.parse(reply(True, "subscribe"), 1) == [Subscribed("bybit", symbols[:5], 1)]
    assert p.parse(reply(True, "subscribe"), 2) == [Subscribed("bybit", symbols[5:], 2)]
    p.resubscribe_messages("C3USDT")
    unsubscribed = b'{"success":true,"ret_msg":"","conn_id":"c1","op":"unsubscribe"}'
    assert p.parse(unsubscribed, 3) == []
    assert p.parse(reply(True), 4) == [Subscribed("bybit", ["C3USDT"], 4)]


def test_a_refusal_naming_a_book_topic_refuses_that_symbol_and_grants_the_rest() -> None:
    p = BybitProtocol(["BTCUSDT", "BTCUSDX"])
    p.subscribe_messages()
    assert p.parse(reply(False, "Invalid symbol :[orderbook.50.BTCUSDX]"), 5) == [
        SubscriptionRejected(
            "bybit",
            ["BTCUSDX"],
            5,
            "venue error reply to 'subscribe': Invalid symbol :[orderbook.50.BTCUSDX]",
        ),
        Subscribed("bybit", ["BTCUSDT"], 5),
    ]


def test_a_refusal_naming_nothing_refuses_the_whole_request_and_a_stray_one_whats_waiting() -> None:
    p = BybitProtocol(["BTCUSDT"])
    p.subscribe_messages()
    reason = "venue error reply to 'subscribe': "
    assert p.parse(reply(False), 1) == [SubscriptionRejected("bybit", ["BTCUSDT"], 1, reason)]
    assert p.parse(reply(False, "x"), 2) == [SubscriptionRejected("bybit", [], 2, reason + "x")]


@pytest.mark.parametrize("depth", [1, 50, 200, 1000])
def test_each_offered_depth_is_its_own_topic(depth: int) -> None:
    venue = BybitProtocol.at_depth(depth)(["BTCUSDT"])
    assert venue.book_depth == depth
    (subscribe,) = (json.loads(m) for m in venue.subscribe_messages())
    assert subscribe["args"] == [f"orderbook.{depth}.BTCUSDT", "publicTrade.BTCUSDT"]
    assert [json.loads(m)["args"] for m in venue.resubscribe_messages("BTCUSDT")] == [
        [f"orderbook.{depth}.BTCUSDT"]
    ] * 2


def test_a_depth_bybit_does_not_offer_is_refused_with_the_choices() -> None:
    with pytest.raises(DepthError, match=r"^bybit offers book depths 1, 50, 200, 1000 \(.*got 25$"):
        BybitProtocol.at_depth(25)
