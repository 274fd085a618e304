"""OKX v5 public protocol: messages in, events out, chained sequence ids, checksums."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from workbench.core.book import OrderBook
from workbench.errors import DepthError, ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues import get_venue
from workbench.venues.okx import OkxProtocol

SYM = "BTC-USDT"


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def books(
    action: str,
    bids: list[list[str]],
    asks: list[list[str]],
    *,
    seq: int | None = None,
    prev: int | None = None,
    checksum: int = 0,
    inst: str = SYM,
) -> bytes:
    data: dict[str, Any] = {
        "asks": [[p, s, "0", "1"] for p, s in asks],
        "bids": [[p, s, "0", "1"] for p, s in bids],
        "ts": "1597026383085",
        "checksum": checksum,
    }
    if seq is not None:
        data["prevSeqId"] = prev
        data["seqId"] = seq
    return dumps({"arg": {"channel": "books", "instId": inst}, "action": action, "data": [data]})


def signed_crc(text: str) -> int:
    value = zlib.crc32(text.encode())
    return value - 2**32 if value >= 2**31 else value


def applied(venue: OkxProtocol, *raws: bytes) -> OrderBook:
    ob = OrderBook()
    for raw in raws:
        for event in venue.parse(raw, 1):
            if isinstance(event, BookSnapshot):
                ob.apply_snapshot(event.bids, event.asks)
            elif isinstance(event, BookDelta):
                ob.apply_delta(event.bids, event.asks)
    return ob


def test_registered_with_the_contract_settings() -> None:
    assert get_venue("okx") is OkxProtocol
    assert OkxProtocol.sequenced and OkxProtocol.seq_rule == "chained"
    assert OkxProtocol.snapshot_in_band and not OkxProtocol.crossed_is_desync
    assert not OkxProtocol.numeric_trade_ids
    assert OkxProtocol(["BTC-USDT"]).trades_path("BTC-USDT", 1) is None
    assert OkxProtocol.book_depth == 400
    assert OkxProtocol.default_ws_url == "wss://ws.okx.com:8443/ws/v5/public"
    assert OkxProtocol.heartbeat_interval < 30 <= OkxProtocol.stale_after


def test_subscribes_books_and_trades_and_pings_with_text() -> None:
    venue = OkxProtocol(["BTC-USDT", "eth-usdt"])
    (raw,) = venue.subscribe_messages()
    message = json.loads(raw)
    assert message["op"] == "subscribe"
    assert message["args"] == [
        {"channel": "books", "instId": "BTC-USDT"},
        {"channel": "books", "instId": "ETH-USDT"},
        {"channel": "trades", "instId": "BTC-USDT"},
        {"channel": "trades", "instId": "ETH-USDT"},
    ]
    assert venue.heartbeat_message() == "ping"
    assert venue.parse(b"pong", 1) == []


def test_snapshot_and_update_carry_the_sequence_chain() -> None:
    venue = OkxProtocol([SYM])
    (snap,) = venue.parse(
        books("snapshot", [["8476.97", "256"]], [["8476.98", "415"]], seq=123456, prev=-1), 9
    )
    assert snap == BookSnapshot(
        "okx", SYM, 1597026383085000, 9, [(8476.97, 256.0)], [(8476.98, 415.0)], 123456
    )
    (delta,) = venue.parse(
        books("update", [["8476.97", "0"]], [["8477", "7"]], seq=123457, prev=123456), 10
    )
    assert delta == BookDelta(
        "okx", SYM, 1597026383085000, 10, [(8476.97, 0.0)], [(8477.0, 7.0)], 123457, 123456
    )


def test_keep_alive_and_sequence_reset_updates_pass_through_unchanged() -> None:
    venue = OkxProtocol([SYM])
    (beat,) = venue.parse(books("update", [], [], seq=15, prev=15), 1)
    assert isinstance(beat, BookDelta)
    assert (beat.bids, beat.asks, beat.seq, beat.prev_seq) == ([], [], 15, 15)
    (reset,) = venue.parse(books("update", [["1", "1"]], [], seq=3, prev=15), 2)
    assert isinstance(reset, BookDelta) and (reset.seq, reset.prev_seq) == (3, 15)


def test_older_data_without_seq_ids_is_unnumbered() -> None:
    (delta,) = OkxProtocol([SYM]).parse(books("update", [["1", "1"]], [], checksum=5), 1)
    assert isinstance(delta, BookDelta)
    assert (delta.seq, delta.prev_seq, delta.checksum) == (None, None, 5)


def test_zero_checksum_means_absent() -> None:
    (snap,) = OkxProtocol([SYM]).parse(books("snapshot", [["1", "1"]], [], seq=1, prev=-1), 1)
    assert isinstance(snap, BookSnapshot) and snap.checksum is None


def test_documented_checksum_vectors_through_the_book() -> None:
    venue = OkxProtocol([SYM])
    snap = books(
        "snapshot",
        [["3366.1", "7"], ["3366", "6"]],
        [["3366.8", "9"], ["3368", "8"]],
        seq=10,
        prev=-1,
        checksum=-1881014294,
    )
    ob = applied(venue, snap)
    assert venue.checksum(SYM, ob) == -1881014294
    update = books("update", [["3366", "0"]], [["3372", "8"]], seq=11, prev=10, checksum=831078360)
    ob = applied(venue, snap, update)
    assert venue.checksum(SYM, ob) == 831078360


def test_checksum_uses_the_exact_wire_text() -> None:
    """ "100.10" and "0.500" are what OKX hashed; the float's shortest text would not be."""
    venue = OkxProtocol([SYM])
    expected = signed_crc("100.10:0.500:100.20:3")
    snap = books(
        "snapshot", [["100.10", "0.500"]], [["100.20", "3"]], seq=1, prev=-1, checksum=expected
    )
    ob = applied(venue, snap)
    assert venue.checksum(SYM, ob) == expected
    assert signed_crc("100.1:0.5:100.2:3") != expected


def test_checksum_falls_back_to_plain_text_for_levels_it_has_no_wire_text_for() -> None:
    venue = OkxProtocol([SYM])
    ob = OrderBook()
    ob.apply_snapshot([(3366.1, 7.0), (3366.0, 6.0)], [(3366.8, 9.0), (3368.0, 8.0)])
    assert venue.checksum(SYM, ob) == -1881014294


def test_wire_texts_follow_updates_and_deletes() -> None:
    venue = OkxProtocol([SYM])
    snap = books(
        "snapshot",
        [["10.50", "1.0"], ["10.40", "2.0"]],
        [["10.60", "3.0"]],
        seq=1,
        prev=-1,
        checksum=signed_crc("10.50:1.0:10.60:3.0:10.40:2.0"),
    )
    update = books(
        "update",
        [["10.50", "0"], ["10.45", "4.00"]],
        [["10.60", "3.50"]],
        seq=2,
        prev=1,
        checksum=signed_crc("10.45:4.00:10.60:3.50:10.40:2.0"),
    )
    ob = applied(venue, snap, update)
    assert venue.checksum(SYM, ob) == signed_crc("10.45:4.00:10.60:3.50:10.40:2.0")


def test_resubscribe_unsubscribes_and_subscribes_the_book() -> None:
    venue = OkxProtocol(["btc-usdt"])
    unsub, sub = (json.loads(m) for m in venue.resubscribe_messages("btc-usdt"))
    assert (unsub["op"], sub["op"]) == ("unsubscribe", "subscribe")
    assert unsub["args"] == sub["args"] == [{"channel": "books", "instId": "BTC-USDT"}]
    assert unsub["id"] != sub["id"]


def test_events_map_the_wire_symbol_back_to_the_users() -> None:
    venue = OkxProtocol(["btc-usdt"])
    (snap,) = venue.parse(books("snapshot", [["1", "1"]], [], seq=1, prev=-1), 1)
    assert snap.symbol == "btc-usdt"


def test_trades_keep_the_taker_side() -> None:
    raw = dumps(
        {
            "arg": {"channel": "trades", "instId": SYM},
            "data": [
                {
                    "instId": SYM,
                    "tradeId": "130639474",
                    "px": "42219.9",
                    "sz": "0.12060306",
                    "side": "buy",
                    "ts": "1630048897897",
                    "count": "3",
                    "source": "0",
                    "seqId": 1234,
                },
                {
                    "instId": SYM,
                    "tradeId": "130639475",
                    "px": "42219.8",
                    "sz": "0.00001",
                    "side": "sell",
                    "ts": "1630048897898",
                    "count": "1",
                    "source": "0",
                    "seqId": 1235,
                },
            ],
        }
    )
    buy, sell = OkxProtocol([SYM]).parse(raw, 5)
    assert buy == Trade("okx", SYM, 1630048897897000, 5, 42219.9, 0.12060306, "buy", "130639474")
    assert isinstance(sell, Trade) and (sell.side, sell.size, sell.trade_id) == (
        "sell",
        0.00001,
        "130639475",
    )


def test_pair_handles_spot_swap_and_futures_ids() -> None:
    venue = OkxProtocol(["BTC-USDT"])
    assert venue.pair("BTC-USDT") == ("BTC", "USDT")
    assert venue.pair("ETH-USD-SWAP") == ("ETH", "USD")
    assert venue.pair("BTC-USD-250328") == ("BTC", "USD")
    with pytest.raises(ValueError):
        venue.pair("BTCUSDT")


def test_control_events() -> None:
    venue = OkxProtocol([SYM])
    ack = b'{"id":"1","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},'
    assert venue.parse(ack + b'"connId":"a4d3ae55"}', 1) == [Subscribed("okx", [SYM], 1)]
    trades_ack = b'{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}'
    assert venue.parse(trades_ack, 1) == []  # the book's acknowledgement is the one that counts
    unsub = b'{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a"}'
    assert venue.parse(unsub, 1) == []
    count = b'{"event":"channel-conn-count","channel":"books","connCount":"2","connId":"a"}'
    assert venue.parse(count, 1) == []
    notice = (
        b'{"event":"notice","code":"64008","msg":"The connection will soon be closed for a '
        b'service upgrade. Please reconnect.","connId":"a4d3ae55"}'
    )
    (request,) = venue.parse(notice, 7)
    assert isinstance(request, ReconnectRequest)
    assert request.recv_ts == 7 and "64008" in request.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b"ping",
        b'{"event":"notice","code":"12345","msg":"something else"}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update"}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[],"ts":"1"}]}',
        b'{"arg":{"channel":"books"},"action":"update","data":[{"asks":[],"bids":[],"ts":"1"}]}',
        b'{"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[],"ts":"1"}]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],'
        b'"ts":"1"}]}',
        books("update", [["abc", "1"]], []),
        books("update", [["1", "-1"]], []),
        books("update", [["nan", "1"]], []),
        books("update", [["inf", "1"]], []),
        books("update", [["1", "1e999"]], []),
        books("update", [["0", "1"]], []),
        books("update", [[" 1", "1"]], []),
        books("update", [["1", "1"]], [], checksum=1).replace(b'"ts":"1597026383085"', b'"ts":"x"'),
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
        b'[["1","1"]],"bids":[],"ts":"1"}]}',
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        b'"tradeId":"1","px":"1","sz":"1","side":"maker","ts":"1"}]}',
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        b'"tradeId":"1","px":"1","sz":"0","side":"buy","ts":"1"}]}',
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        b'"px":"1","sz":"1","side":"buy","ts":"1"}]}',
    ],
)
def test_malformed_or_unexpected_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        OkxProtocol([SYM]).parse(raw, 1)


def test_error_replies_reject_with_code_and_message_and_the_instrument_they_name() -> None:
    raw = b'{"event":"error","code":"60018","msg":"Wrong URL or channel:books9","connId":"x"}'
    assert OkxProtocol([SYM]).parse(raw, 1) == [
        SubscriptionRejected("okx", [], 1, "okx error 60018: Wrong URL or channel:books9")
    ]
    raw = b'{"event":"error","code":"60018","msg":"channel:books,instId:BTC-USDX doesn\'t exist"}'
    (event,) = OkxProtocol([SYM, "btc-usdx"]).parse(raw, 2)
    assert isinstance(event, SubscriptionRejected) and event.symbols == ["btc-usdx"]


def test_millisecond_times_are_read_as_integers_from_text_or_number() -> None:
    venue = OkxProtocol([SYM])
    as_number = books("update", [["1", "1"]], [], seq=2, prev=1).replace(
        b'"ts":"1597026383085"', b'"ts":1597026383085'
    )
    for raw in (books("update", [["1", "1"]], [], seq=2, prev=1), as_number):
        (delta,) = venue.parse(raw, 1)
        assert delta.ts == 1597026383085000
    for bad in (b'"ts":"1.5"', b'"ts":"x"', b'"ts":""', b'"ts":" 1"', b'"ts":null'):
        raw = books("update", [["1", "1"]], [], seq=2, prev=1)
        with pytest.raises(ProtocolError):
            venue.parse(raw.replace(b'"ts":"1597026383085"', bad), 1)
    trade = (
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        b'"tradeId":"1","px":"1","sz":"1","side":"buy","ts":"TS"}]}'
    )
    (sold,) = venue.parse(trade.replace(b"TS", b"1630048897897"), 1)
    assert sold.ts == 1630048897897000
    with pytest.raises(ProtocolError):
        venue.parse(trade.replace(b"TS", b"soon"), 1)


def test_a_one_sided_update_has_an_empty_other_side() -> None:
    (delta,) = OkxProtocol([SYM]).parse(
        books("update", [], [["8477.5", "0.25"], ["8478", "0"]], seq=2, prev=1), 1
    )
    assert isinstance(delta, BookDelta)
    assert (delta.bids, delta.asks) == ([], [(8477.5, 0.25), (8478.0, 0.0)])


@pytest.mark.parametrize(("depth", "channel"), [(1, "bbo-tbt"), (5, "books5"), (400, "books")])
def test_each_offered_depth_is_its_own_channel(depth: int, channel: str) -> None:
    venue = OkxProtocol.at_depth(depth)([SYM])
    assert venue.book_depth == depth
    (subscribe,) = (json.loads(m) for m in venue.subscribe_messages())
    assert subscribe["args"][0] == {"channel": channel, "instId": SYM}
    assert subscribe["args"][1]["channel"] == "trades"
    unsub, sub = (json.loads(m) for m in venue.resubscribe_messages(SYM))
    assert unsub["args"] == sub["args"] == [{"channel": channel, "instId": SYM}]
    ack = dumps({"event": "subscribe", "arg": {"channel": channel, "instId": SYM}, "connId": "a"})
    assert venue.parse(ack, 7) == [Subscribed("okx", [SYM], 7)]


def test_books5_pushes_are_whole_books_that_replace_the_last() -> None:
    """``books5`` sends the top 5 every time, with a ``seqId`` but no ``action``, no
    ``prevSeqId`` and no checksum (OKX's documented push)."""
    venue = OkxProtocol.at_depth(5)([SYM])

    def push(seq: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
        data = {"asks": asks, "bids": bids, "instId": SYM, "ts": "1670324386802", "seqId": seq}
        return dumps({"arg": {"channel": "books5", "instId": SYM}, "data": [data]})

    first = push(1, [["111.06", "55154", "0", "2"]], [["111.07", "53276", "0", "2"]])
    second = push(2, [["111.05", "4", "0", "1"]], [["111.08", "1.5", "0", "1"]])
    (snap,) = venue.parse(first, 9)
    assert snap == BookSnapshot(
        "okx", SYM, 1670324386802000, 9, [(111.06, 55154.0)], [(111.07, 53276.0)], 1
    )
    book = applied(venue, first, second)
    assert book.top(5) == ([(111.05, 4.0)], [(111.08, 1.5)])  # nothing left of the first push
    with pytest.raises(ProtocolError, match="unexpected channel 'books'"):
        venue.parse(books("update", [["1", "1"]], [], seq=3, prev=2), 1)


def test_a_depth_okx_does_not_offer_is_refused_with_the_choices() -> None:
    with pytest.raises(DepthError, match=r"^okx offers book depths 1, 5, 400 \(.*got 50$"):
        OkxProtocol.at_depth(50)
