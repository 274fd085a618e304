"""Bitstamp protocol: messages in, normalized events out; microtimestamps order the book."""

from __future__ import annotations

import json

import pytest

from workbench.core.sequencer import SymbolSequencer
from workbench.errors import ProtocolError, UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues import get_venue
from workbench.venues.bitstamp import BitstampProtocol

P = BitstampProtocol(["BTCUSD", "etheur"])


def diff(micros: int, bids: list[list[str]], asks: list[list[str]], pair: str = "btcusd") -> bytes:
    data = {"timestamp": str(micros // 1_000_000), "microtimestamp": str(micros)}
    return json.dumps(
        {
            "data": {**data, "bids": bids, "asks": asks},
            "event": "data",
            "channel": f"diff_order_book_{pair}",
        }
    ).encode()


def trade(trade_id: int, taker: int, micros: int = 1615877939649000) -> bytes:
    data = {
        "id": trade_id, "timestamp": str(micros // 1_000_000), "amount": 0.02,
        "amount_str": "0.02000000", "price": 55008.3, "price_str": "55008.30", "type": taker,
        "microtimestamp": str(micros), "buy_order_id": 1339567984607234,
        "sell_order_id": 1339567982141443,
    }  # fmt: skip
    return json.dumps({"data": data, "channel": "live_trades_btcusd", "event": "trade"}).encode()


def one(raw: bytes, recv_ts: int = 0) -> BookDelta | Trade:
    (event,) = P.parse(raw, recv_ts)
    assert isinstance(event, BookDelta | Trade)
    return event


def test_registered_under_its_name() -> None:
    assert get_venue("bitstamp") is BitstampProtocol


def test_diff_is_a_delta_sequenced_by_its_microtimestamp() -> None:
    msg = diff(1580336904228758, [["9317.09", "2.67910000"], ["9296.14", "0.00000000"]], [])
    assert one(msg, 1580336904300000) == BookDelta(
        "bitstamp",
        "BTCUSD",  # the user's spelling; the channel says btcusd
        1580336904228758,
        1580336904300000,
        [(9317.09, 2.6791), (9296.14, 0.0)],
        [],
        seq=1580336904228758,
    )


def test_second_pair_and_unknown_pairs_keep_their_spelling() -> None:
    assert one(diff(1, [["1", "1"]], [], pair="etheur")).symbol == "etheur"
    assert one(diff(1, [["1", "1"]], [], pair="xrpusd")).symbol == "xrpusd"  # feed quarantines


def test_trade_type_is_the_taker_side_and_prices_come_from_the_exact_strings() -> None:
    bought, sold = one(trade(157699738, 0)), one(trade(157699739, 1))
    assert bought == Trade(
        "bitstamp", "BTCUSD", 1615877939649000, 0, 55008.3, 0.02, "buy", "157699738"
    )
    assert isinstance(sold, Trade) and sold.side == "sell"


def test_control_messages() -> None:
    ok = b'{"event":"bts:subscription_succeeded","channel":"live_trades_btcusd","data":{}}'
    assert P.parse(ok, 1) == []  # the book channel's acknowledgement is the one that counts
    book = b'{"event":"bts:subscription_succeeded","channel":"diff_order_book_etheur","data":{}}'
    assert P.parse(book, 1) == [Subscribed("bitstamp", ["etheur"], 1)]
    beat = b'{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}'
    assert P.parse(beat, 2) == [Heartbeat("bitstamp", 2, 2)]
    for data in (b'""', b"{}", b"null"):
        raw = b'{"event":"bts:request_reconnect","channel":"","data":' + data + b"}"
        assert P.parse(raw, 3) == [ReconnectRequest("bitstamp", 3, "bts:request_reconnect")]


def test_error_reply_rejects_what_is_waiting_with_the_venues_words() -> None:
    raw = b'{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription"}}'
    assert P.parse(raw, 2) == [
        SubscriptionRejected("bitstamp", [], 2, "venue error reply: Bad subscription")
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage",
        b"[]",
        b'{"event":"order_created","channel":"live_orders_btcusd","data":{}}',
        diff(1, [], []).replace(b"diff_order_book_", b"order_book_"),
        trade(1, 0).replace(b"live_trades_", b"live_orders_"),
        diff(1, [], []).replace(b'"microtimestamp": "1"', b'"microtimestamp": 1'),
        diff(1, [], []).replace(b'"microtimestamp": "1"', b'"microtimestamp": "-1"'),
        diff(1, [], []).replace(b'"microtimestamp": "1"', b'"microtimestamp": "1e6"'),
        diff(1, [["9317.09", "-1"]], []),
        diff(1, [["inf", "1"]], []),
        diff(1, [["9317.09"]], []),
        diff(1, [["9317.09", "nan"]], []),
        diff(1, [["nan", "1"]], []),
        diff(1, [["0", "1"]], []),
        diff(1, [["-5", "1"]], []),
        diff(1, [[" 9317.09", "1"]], []),
        diff(1, [["9_317.09", "1"]], []),
        diff(1, [["+9317.09", "1"]], []),
        diff(1, [["9317.09", "1e400"]], []),
        diff(1, [["9317.09", "1", "extra"]], []),
        diff(1, [], [["abc", "1"]]),
        trade(1, 2),
        trade(1, 0).replace(b'"price_str": "55008.30"', b'"price_str": "0"'),
        trade(1, 0).replace(b'"amount_str": "0.02000000", ', b""),
        trade(1, 0).replace(b'"id": 1,', b'"id": "1",'),
    ],
)
def test_malformed_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        P.parse(raw, 0)


def test_subscribes_the_diff_book_before_trades_and_heartbeats_by_app_message() -> None:
    assert [json.loads(m) for m in P.subscribe_messages()] == [
        {"event": "bts:subscribe", "data": {"channel": "diff_order_book_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "live_trades_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "diff_order_book_etheur"}},
        {"event": "bts:subscribe", "data": {"channel": "live_trades_etheur"}},
    ]
    assert json.loads(P.heartbeat_message()) == {"event": "bts:heartbeat"}
    assert 0 < P.heartbeat_interval < P.stale_after


def test_contract_flags() -> None:
    assert (P.sequenced, P.seq_rule, P.snapshot_in_band, P.numeric_trade_ids) == (
        True,
        "monotonic",
        False,
        False,
    )
    assert P.trades_path("BTCUSD", 1) is None  # no id-paged trade history


def test_rest_snapshot_is_sequenced_by_its_microtimestamp() -> None:
    assert P.snapshot_path("BTCUSD") == "/api/v2/order_book/btcusd/"
    body = (
        b'{"timestamp":"1643643584","microtimestamp":"1643643584684047",'
        b'"bids":[["36773.41","0.10000000"],["36770.00","2"]],"asks":[["36780.12","0.05436000"]]}'
    )
    assert P.parse_snapshot(body, "BTCUSD", 7) == BookSnapshot(
        "bitstamp",
        "BTCUSD",
        1643643584684047,
        7,
        [(36773.41, 0.1), (36770.0, 2.0)],
        [(36780.12, 0.05436)],
        1643643584684047,
    )


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"microtimestamp":"x","bids":[],"asks":[]}', b'{"error":"Not found"}'],
)
def test_bad_rest_snapshot_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        P.parse_snapshot(body, "BTCUSD", 0)


def test_monotonic_seq_says_which_buffered_diffs_a_snapshot_contains() -> None:
    """The documented sync: diffs at or before the snapshot's microtimestamp are in it."""
    snapshot_micros = 1643643584684047
    buffered = [
        one(diff(m, [["1", "1"]], []))
        for m in (1643643584600000, snapshot_micros, 1643643584700000, 1643643584800000)
    ]
    assert [d.seq for d in buffered] == [d.ts for d in buffered]
    newer = [d.ts for d in buffered if d.ts > snapshot_micros]
    assert newer == [1643643584700000, 1643643584800000]


@pytest.mark.parametrize(
    ("symbol", "pair"),
    [
        ("btcusd", ("BTC", "USD")),
        ("BTCUSDC", ("BTC", "USDC")),
        ("usdcusd", ("USDC", "USD")),
        ("ethbtc", ("ETH", "BTC")),
        ("xrpgbp", ("XRP", "GBP")),
        ("1incheur", ("1INCH", "EUR")),
        ("pyusdusd", ("PYUSD", "USD")),
    ],
)
def test_pair_splits_on_the_longest_quote_suffix(symbol: str, pair: tuple[str, str]) -> None:
    assert P.pair(symbol) == pair


@pytest.mark.parametrize("symbols", [["btc/usd"], ["btcusd", "BTCUSD"], ["btc usd"]])
def test_unusable_symbol_lists_are_usage_errors(symbols: list[str]) -> None:
    with pytest.raises(UsageError):
        BitstampProtocol(symbols)


def test_pair_rejects_symbols_without_a_known_quote() -> None:
    with pytest.raises(ValueError):
        P.pair("usd")


def test_the_feed_sequencer_buffers_until_the_snapshot_then_orders_by_microtimestamp() -> None:
    """Our numbers through the feed's own ``monotonic`` sequencer (pure core code)."""
    seq: SymbolSequencer[BookDelta | Trade] = SymbolSequencer(rule="monotonic")
    seq.connection_up(1)
    diffs = [one(diff(T, [["1", "1"]], [])) for T in (100, 500, 600, 700)]
    for d in diffs:
        assert d.seq is not None
        assert seq.on_message(1, d.seq, d, 0.0) == []  # buffered until the REST book
    assert seq.snapshot_applied(None, 500, 0.0) == diffs[2:]  # 100 and 500 are in it
    late, again, newer = (one(diff(T, [["1", "2"]], [])) for T in (650, 700, 800))
    for d in (late, again):
        assert d.seq is not None and seq.on_message(1, d.seq, d, 0.0) == []
    assert newer.seq is not None and seq.on_message(1, newer.seq, newer, 0.0) == [newer]
    assert not seq.needs_resync  # the rule cannot see a loss: reconnects resync instead


def test_levels_are_the_correctly_rounded_values_of_the_wire_decimals() -> None:
    delta = one(diff(1, [["0.1", "0.30000000"], ["36773.41", "0.00000000"]], [["1e2", "3"]]))
    assert isinstance(delta, BookDelta)
    assert delta.bids == [(0.1, 0.3), (36773.41, 0.0)]  # float("0.1"), not 0.1000000001
    assert delta.asks == [(100.0, 3.0)]
    assert all(type(v) is float for level in delta.bids + delta.asks for v in level)


@pytest.mark.parametrize("level", [b'["1","nan"]', b'["0","1"]', b'[" 1","1"]', b'["1"]'])
def test_bad_rest_snapshot_levels_are_a_protocol_error(level: bytes) -> None:
    body = b'{"microtimestamp":"1","bids":[' + level + b'],"asks":[]}'
    with pytest.raises(ProtocolError):
        P.parse_snapshot(body, "BTCUSD", 0)
