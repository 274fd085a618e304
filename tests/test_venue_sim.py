"""The simulator's venue protocol: strict parsing into normalized events."""

from __future__ import annotations

import pytest

from workbench.errors import ProtocolError, UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues import get_venue
from workbench.venues.sim import SimProtocol

P = SimProtocol(["BTC-USD"])


def test_delta_parses_decimal_strings_exactly() -> None:
    msg = (
        b'{"type":"delta","symbol":"BTC-USD","seq":7,"ts":1700000000000001,'
        b'"bids":[["29999.50","0"]],"asks":[["30001.00","0.000051"]]}'
    )
    (event,) = P.parse(msg, 1700000000000100)
    assert event == BookDelta(
        "sim",
        "BTC-USD",
        1700000000000001,
        1700000000000100,
        [(29999.5, 0.0)],
        [(30001.0, 5.1e-05)],
        7,
    )


def test_trade_keeps_taker_side_and_string_id() -> None:
    msg = (
        b'{"type":"trade","symbol":"BTC-USD","seq":8,"ts":5,"trade_id":42,'
        b'"price":"30000.50","size":"0.3","side":"sell"}'
    )
    (event,) = P.parse(msg, 6)
    assert isinstance(event, Trade)
    assert (event.side, event.trade_id, event.price, event.size) == ("sell", "42", 30000.5, 0.3)


def test_snapshot_and_heartbeat() -> None:
    snap = (
        b'{"type":"snapshot","symbol":"BTC-USD","seq":3,"ts":1,"bids":[["1.5","2"]],'
        b'"asks":[["2.5","1"]],"last_trade_id":17}'
    )
    (event,) = P.parse(snap, 2)
    assert isinstance(event, BookSnapshot)
    assert event.last_trade_id == "17" and event.bids == [(1.5, 2.0)]
    (beat,) = P.parse(b'{"type":"heartbeat","ts":9,"seqs":{"BTC-USD":3}}', 10)
    assert beat == Heartbeat("sim", 9, 10, {"BTC-USD": 3})


def test_pongs_produce_nothing_and_subscribe_replies_say_subscribed_or_rejected() -> None:
    assert P.parse(b'{"type":"pong","id":1,"ts":2}', 3) == []
    assert P.parse(b'{"type":"subscribed","symbols":["BTC-USD"]}', 3) == [
        Subscribed("sim", ["BTC-USD"], 3)
    ]
    assert P.parse(b'{"type":"error","message":"unknown symbols: XYZ"}', 4) == [
        SubscriptionRejected("sim", [], 4, "venue error reply: unknown symbols: XYZ")
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b'{"type":"delta","symbol":"BTC-USD","seq":"7","ts":1,"bids":[],"asks":[]}',
        b'{"type":"delta","symbol":"BTC-USD","ts":1,"bids":[],"asks":[]}',
        b'{"type":"delta","symbol":"BTC-USD","seq":7,"ts":1,"bids":[["abc","1"]],"asks":[]}',
        b'{"type":"delta","symbol":"BTC-USD","seq":7,"ts":1,"bids":[["1","-1"]],"asks":[]}',
        b'{"type":"delta","symbol":"BTC-USD","seq":7,"ts":1,"bids":[["nan","1"]],"asks":[]}',
        b'{"type":"delta","symbol":"BTC-USD","seq":7,"ts":1,"bids":[["inf","1"]],"asks":[]}',
        b'{"type":"delta","symbol":"BTC-USD","seq":7,"ts":1,"bids":{"1":"1"},"asks":[]}',
        b'{"type":"trade","symbol":"BTC-USD","seq":8,"ts":5,"trade_id":1,'
        b'"price":"1","size":"0","side":"buy"}',
        b'{"type":"trade","symbol":"BTC-USD","seq":8,"ts":5,"trade_id":1,'
        b'"price":"1","size":"1","side":"maker"}',
        b'{"type":"surprise"}',
        b"[1,2,3]",
    ],
)
def test_malformed_messages_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        P.parse(raw, 1)


def test_registry_names_known_venues_on_a_typo() -> None:
    assert get_venue("sim") is SimProtocol
    with pytest.raises(UsageError, match=r"unknown venue 'simm'; known venues: .*\bsim\b"):
        get_venue("simm")


def test_rest_paths_escape_symbols() -> None:
    assert P.snapshot_path("BTC/USD") == "/book/BTC%2FUSD"
    assert P.trades_path("BTC-USD", 10).startswith("/trades/BTC-USD?since_id=10&limit=")
