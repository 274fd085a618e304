"""Binance Spot protocol: messages in, normalized events out; the numbers that drive its sync."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.core.sequencer import SymbolSequencer
from workbench.errors import ProtocolError, UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues import get_venue
from workbench.venues.binance import BinanceProtocol

P = BinanceProtocol(["btcusdt", "ETHBTC"])


def depth(first: int, last: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    data = {"e": "depthUpdate", "E": 1672515782136, "s": "BTCUSDT", "U": first, "u": last}
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": {**data, "b": bids, "a": asks}})\
        .encode()  # fmt: skip


def agg(trade_id: int, maker_is_buyer: bool, price: str = "30000.10") -> bytes:
    data = {
        "e": "aggTrade", "E": 1672515782137, "s": "BTCUSDT", "a": trade_id, "p": price,
        "q": "0.01200000", "f": 100, "l": 105, "T": 1672515782136, "m": maker_is_buyer, "M": True,
    }  # fmt: skip
    return json.dumps({"stream": "btcusdt@aggTrade", "data": data}).encode()


def one_delta(raw: bytes) -> BookDelta:
    (event,) = P.parse(raw, 0)
    assert isinstance(event, BookDelta)
    return event


def one_trade(raw: bytes, recv_ts: int = 0) -> Trade:
    (event,) = P.parse(raw, recv_ts)
    assert isinstance(event, Trade)
    return event


def test_registered_under_its_name() -> None:
    assert get_venue("binance") is BinanceProtocol


def test_depth_update_is_a_chained_delta_u_after_u_minus_1() -> None:
    msg = depth(157, 160, [["30000.01", "0.5"], ["29999.50", "0.00000000"]], [["30001.00", "2"]])
    (event,) = P.parse(msg, 1672515782200000)
    assert event == BookDelta(
        "binance",
        "btcusdt",  # the user's spelling, not the wire's BTCUSDT
        1672515782136000,
        1672515782200000,
        [(30000.01, 0.5), (29999.5, 0.0)],
        [(30001.0, 2.0)],
        seq=160,
        prev_seq=156,
    )


def test_prices_are_exact_and_never_exponent_formatted() -> None:
    event = one_delta(depth(1, 1, [["0.00005100", "12345678.90123456"]], []))
    assert event.bids == [(float("0.000051"), float("12345678.90123456"))]
    assert repr(event.bids[0][0]) == "5.1e-05"  # the float is exact; only repr uses exponents


def test_aggtrade_side_is_the_taker_side() -> None:
    sold = one_trade(agg(12345, maker_is_buyer=True), 7)
    bought = one_trade(agg(12346, maker_is_buyer=False), 8)
    assert sold == Trade("binance", "btcusdt", 1672515782136000, 7, 30000.1, 0.012, "sell", "12345")
    assert (bought.side, bought.trade_id) == ("buy", "12346")


def test_raw_unwrapped_events_parse_like_wrapped_ones() -> None:
    wrapped = depth(5, 9, [["1.5", "2"]], [])
    raw = json.dumps(json.loads(wrapped)["data"]).encode()
    assert P.parse(raw, 3) == P.parse(wrapped, 3)
    raw_trade = json.dumps(json.loads(agg(1, True))["data"]).encode()
    assert P.parse(raw_trade, 3) == P.parse(agg(1, True), 3)


def test_second_symbol_and_unknown_wire_symbols_keep_their_spelling() -> None:
    msg = depth(1, 2, [["0.05", "1"]], []).replace(b'"BTCUSDT"', b'"ETHBTC"')
    assert one_delta(msg).symbol == "ETHBTC"
    unknown = depth(1, 2, [["0.05", "1"]], []).replace(b'"BTCUSDT"', b'"DOGEUSDT"')
    assert one_delta(unknown).symbol == "DOGEUSDT"  # the feed quarantines it


def test_the_subscribe_reply_acknowledges_every_symbol_and_other_replies_produce_nothing() -> None:
    assert P.parse(b'{"result":null,"id":1}', 4) == [
        Subscribed("binance", ["btcusdt", "ETHBTC"], 4)
    ]
    assert P.parse(b'{"result":["btcusdt@aggTrade"],"id":3}', 0) == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"e":"serverShutdown","E":1770123456789}',
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"serverShutdown","E":1770123456789}}',
        b'{"event":{"e":"serverShutdown","E":1770123456789}}',
    ],
)
def test_server_shutdown_asks_for_a_reconnect(raw: bytes) -> None:
    assert P.parse(raw, 5) == [ReconnectRequest("binance", 5, "serverShutdown")]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}', "invalid stream"),
        (b'{"code":0,"msg":"Unknown property","id":1}', "Unknown property"),
    ],
)
def test_error_replies_reject_the_subscription_of_every_symbol(raw: bytes, reason: str) -> None:
    (event,) = P.parse(raw, 6)
    assert isinstance(event, SubscriptionRejected)
    assert (event.symbols, event.recv_ts) == (["btcusdt", "ETHBTC"], 6)
    assert reason in event.reason and event.reason.startswith("venue error reply")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1,2]",
        b"{}",
        b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1}}',
        b'{"stream":"x","data":"text"}',
        depth(1, 2, [], []).replace(b'"U": 1', b'"U": "1"'),
        depth(1, 2, [], []).replace(b'"u": 2, ', b""),
        depth(3, 2, [], []),
        depth(1, 2, [["abc", "1"]], []),
        depth(1, 2, [["1", "-1"]], []),
        depth(1, 2, [["nan", "1"]], []),
        depth(1, 2, [["inf", "1"]], []),
        depth(1, 2, [["1", "1e999"]], []),
        depth(1, 2, [[" 1", "1"]], []),
        depth(1, 2, [], []).replace(b'"b": []', b'"b": 5'),
        depth(1, 2, [["0", "1"]], []),
        depth(1, 2, [["1", "2", "3"]], []),
        agg(1, True, price="0"),
        agg(1, True).replace(b'"m": true', b'"m": "true"'),
        agg(-1, True),
    ],
)
def test_malformed_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        P.parse(raw, 1)


def test_subscribes_aggtrade_and_100ms_diff_depth_in_one_request() -> None:
    (msg,) = P.subscribe_messages()
    assert json.loads(msg) == {
        "method": "SUBSCRIBE",
        "params": [
            "btcusdt@aggTrade",
            "btcusdt@depth@100ms",
            "ethbtc@aggTrade",
            "ethbtc@depth@100ms",
        ],
        "id": 1,
    }
    assert P.heartbeat_message() is None and P.heartbeat_interval == 0
    assert P.stale_after > 20  # the server pings every 20 s


def test_contract_flags() -> None:
    assert (P.sequenced, P.seq_rule, P.snapshot_in_band, P.numeric_trade_ids) == (
        True,
        "chained",
        False,
        True,
    )
    assert P.resubscribe_messages("btcusdt") is None  # a gap refetches the REST snapshot


def test_rest_snapshot_carries_last_update_id_as_seq() -> None:
    assert P.snapshot_path("btcusdt") == "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    body = (
        b'{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"],["3.9","1"]],'
        b'"asks":[["4.00000200","12.00000000"]]}'
    )
    snap = P.parse_snapshot(body, "btcusdt", 99)
    assert snap == BookSnapshot(
        "binance", "btcusdt", 99, 99, [(4.0, 431.0), (3.9, 1.0)], [(4.000002, 12.0)], 1027024
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"lastUpdateId":"1","bids":[],"asks":[]}',
        b'{"lastUpdateId":1,"bids":[["Infinity","1"]],"asks":[]}',
        b'{"code":-1121,"msg":"x"}',
    ],
)
def test_bad_rest_snapshot_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        P.parse_snapshot(body, "btcusdt", 0)


def test_trade_backfill_pages_by_aggregate_id() -> None:
    assert P.trades_path("btcusdt", 501) == "/api/v3/aggTrades?symbol=BTCUSDT&fromId=502&limit=1000"
    body = (
        b'[{"a":502,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,'
        b'"T":1498793709153,"m":true,"M":true},'
        b'{"a":503,"p":"0.01633103","q":"1","f":27782,"l":27783,"T":1498793709154,"m":false}]'
    )
    trades = P.parse_trades(body, "btcusdt", 5)
    assert [(t.trade_id, t.side, t.ts, t.symbol) for t in trades] == [
        ("502", "sell", 1498793709153000, "btcusdt"),
        ("503", "buy", 1498793709154000, "btcusdt"),
    ]
    with pytest.raises(ProtocolError):
        P.parse_trades(b'{"code":-1121,"msg":"Invalid symbol."}', "btcusdt", 5)


@pytest.mark.parametrize(
    ("symbol", "pair"),
    [
        ("BTCUSDT", ("BTC", "USDT")),
        ("ethbtc", ("ETH", "BTC")),
        ("BTCFDUSD", ("BTC", "FDUSD")),
        ("USDCUSDT", ("USDC", "USDT")),
        ("BTCTUSD", ("BTC", "TUSD")),
        ("BNBTRY", ("BNB", "TRY")),
        ("SHIBEUR", ("SHIB", "EUR")),
    ],
)
def test_pair_splits_on_the_longest_quote_suffix(symbol: str, pair: tuple[str, str]) -> None:
    assert P.pair(symbol) == pair


@pytest.mark.parametrize("symbol", ["USDT", "ABCXYZ"])
def test_pair_rejects_symbols_without_a_known_quote(symbol: str) -> None:
    with pytest.raises(ValueError):
        P.pair(symbol)


@pytest.mark.parametrize(
    "symbols", [["BTC-USDT"], ["btcusdt", "BTCUSDT"], [f"S{i}USDT" for i in range(513)]]
)
def test_unusable_symbol_lists_are_usage_errors(symbols: list[str]) -> None:
    with pytest.raises(UsageError):
        BinanceProtocol(symbols)


def documented_sync(last_update_id: int, events: list[tuple[int, int]]) -> list[str]:
    """Binance's own wording, in U/u: what happens to each buffered event after the snapshot."""
    out, local, first = [], last_update_id, True
    for first_id, last_id in events:
        if last_id <= local:
            out.append("drop")
        elif (first and not first_id <= last_update_id + 1 <= last_id) or (
            not first and first_id > local + 1
        ):
            out.append("resync")  # the first must straddle; later ones start at local + 1
            break
        else:
            out.append("apply")
            local, first = last_id, False
    return out


def chained_sync(snapshot_seq: int, deltas: list[BookDelta]) -> list[str]:
    """The ``chained`` rule of base.py, in seq/prev_seq: straddle first, then prev_seq == last."""
    out, last, first = [], snapshot_seq, True
    for d in deltas:
        assert d.seq is not None and d.prev_seq is not None
        if d.seq <= last:
            out.append("drop")
        elif d.prev_seq > last or (not first and d.prev_seq != last):
            out.append("resync")
            break
        else:
            out.append("apply")
            last, first = d.seq, False
    return out


@given(
    st.integers(0, 60),
    st.lists(st.tuples(st.sampled_from([0, 0, 0, 1, 3]), st.integers(0, 4)), max_size=15),
)
def test_seq_and_prev_seq_drive_the_documented_sync_exactly(
    last_update_id: int, steps: list[tuple[int, int]]
) -> None:
    """A stream as Binance sends it (each event starts after the previous one ends, sometimes
    with a hole), against any snapshot position: both readings decide the same."""
    events, end = [], 0
    for hole, width in steps:
        events.append((end + 1 + hole, end + 1 + hole + width))
        end = events[-1][1]
    deltas = [one_delta(depth(first, last, [], [])) for first, last in events]
    assert chained_sync(last_update_id, deltas) == documented_sync(last_update_id, events)


def test_documented_scenario_drop_straddle_chain_gap() -> None:
    deltas = [
        one_delta(depth(u0, u1, [], [])) for u0, u1 in [(95, 99), (99, 102), (103, 105), (107, 109)]
    ]
    assert chained_sync(100, deltas) == ["drop", "apply", "apply", "resync"]


def test_the_feed_sequencer_buffers_drops_straddles_and_names_the_gap() -> None:
    """Our numbers through the feed's own ``chained`` sequencer (pure core code)."""
    seq: SymbolSequencer[BookDelta] = SymbolSequencer(rule="chained")
    seq.connection_up(1)
    buffered = [one_delta(depth(a, b, [], [])) for a, b in [(991, 995), (996, 1002), (1003, 1005)]]
    for d in buffered:
        assert d.seq is not None
        assert seq.on_message(1, d.seq, d, 0.0, d.prev_seq) == []  # no snapshot yet
    assert seq.snapshot_applied(None, 998, 0.0) == buffered[1:]  # 991-995 dropped, 996 straddles
    lost_after = one_delta(depth(1008, 1010, [], []))
    assert lost_after.seq is not None
    assert seq.on_message(1, lost_after.seq, lost_after, 0.0, lost_after.prev_seq) == []
    gaps = [n.detail["from_seq"] for n in seq.notes if n.kind == "gap"]
    assert gaps == [1006]
    assert seq.needs_resync
    assert seq.snapshot_applied(None, 1010, 0.0) == []  # the refetched book holds 1008-1010
    nxt = one_delta(depth(1011, 1011, [], []))
    assert nxt.seq is not None
    assert seq.on_message(1, nxt.seq, nxt, 0.0, nxt.prev_seq) == [nxt]
