"""The generic vendor tick feed: a mapping file in, a configured pure protocol out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from workbench.errors import ProtocolError, UsageError
from workbench.events import MarketEvent, Quote, Subscribed, Trade
from workbench.venues import get_venue
from workbench.venues.base import VenueProtocol
from workbench.venues.vendor import VendorMapping, VendorProtocol, load_mapping, vendor_protocol

ROOT = Path(__file__).resolve().parent.parent
HK = ROOT / "data" / "vendors" / "hk_ticks.json"
T0 = "2026-11-21 09:30:00.123"  # Hong Kong local time = 01:30:00.123 UTC
T0_US = 1_795_224_600_123_000


def hk_tick(time: str = T0, volume: str = "1205300", **fields: Any) -> bytes:
    tick = {
        "symbol": "0700.HK",
        "time": time,
        "last_price": "385.200",
        "volume": volume,
        "bid_price": "385.000",
        "bid_size": "32000",
        "ask_price": "385.200",
        "ask_size": "18500",
        **fields,
    }
    return json.dumps({"type": "tick", "data": [tick]}).encode()


def mapping(**overrides: Any) -> dict[str, Any]:
    """A small flat-tick mapping (EXCHANGES.md's vendor shape) to vary per test."""
    base: dict[str, Any] = {
        "name": "eqv",
        "ws_url": "wss://vendor.example/ws",
        "subscribe": {"action": "subscribe", "symbols": "{symbols}"},
        "heartbeat": {"action": "ping"},
        "heartbeat_interval": 30,
        "stale_after": 75,
        "currency": "USD",
        "timestamp": {"format": "ms_string"},
        "fields": {
            "symbol": "symbol",
            "ts": "timestamp",
            "last_price": "last_price",
            "last_size": "volume",
            "bid_price": "bid_price",
            "bid_size": "bid_size",
            "ask_price": "ask_price",
            "ask_size": "ask_size",
        },
    }
    base.update(overrides)
    return base


def protocol(symbols: tuple[str, ...] = ("AAPL",), **overrides: Any) -> VenueProtocol:
    cls = vendor_protocol(msgspec.convert(mapping(**overrides), VendorMapping, strict=True))
    return cls(list(symbols))


def tick(ts: int = 1763712000123, **fields: Any) -> bytes:
    return json.dumps({"symbol": "AAPL", "timestamp": str(ts), **fields}).encode()


def trades(events: list[MarketEvent]) -> list[tuple[str, float, float, str]]:
    return [(e.trade_id, e.price, e.size, e.side) for e in events if isinstance(e, Trade)]


def write(tmp_path: Path, data: dict[str, Any], name: str = "m.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# -- the mapping file -----------------------------------------------------------------------
def test_hk_example_configures_the_protocol_class() -> None:
    cls = vendor_protocol(load_mapping(HK))
    assert issubclass(cls, VendorProtocol)
    assert cls.name == "hk-vendor"
    assert cls.default_ws_url == "wss://push.example-hk-vendor.com/v2/stream"
    assert cls.default_rest_url == "https://api.example-hk-vendor.com"
    assert (cls.heartbeat_interval, cls.stale_after) == (30.0, 75.0)
    assert (cls.sequenced, cls.numeric_trade_ids) == (False, False)
    venue = cls(["0700.HK", "0005.HK"])
    assert venue.subscribe_messages() == ['{"action":"subscribe","symbols":["0700.HK","0005.HK"]}']
    assert venue.heartbeat_message() == '{"action":"ping"}'
    assert venue.pair("0700.HK") == ("0700.HK", "HKD")
    assert venue.ticker_path("0700.HK") == "/v2/quote?symbol=0700.HK"


def test_registry_entry_needs_a_mapping() -> None:
    assert get_venue("vendor") is VendorProtocol
    with pytest.raises(UsageError, match="--mapping FILE"):
        VendorProtocol(["0700.HK"])


def test_toml_mapping_equals_the_json_one(tmp_path: Path) -> None:
    toml = tmp_path / "hk.toml"
    toml.write_text(
        """
name = "hk-vendor"
ws_url = "wss://push.example-hk-vendor.com/v2/stream"
currency = "HKD"
subscribe = { action = "subscribe", symbols = "{symbols}" }
heartbeat = { action = "ping" }
heartbeat_interval = 30
stale_after = 75
ignore = [{ type = "pong" }]
ack = [{ type = "subscribed" }]
message_path = "data"
timestamp = { format = "iso", tz = "Asia/Hong_Kong" }
volume_is_cumulative = true

[fields]
symbol = "symbol"
ts = "time"
last_price = "last_price"
volume = "volume"
bid_price = "bid_price"
bid_size = "bid_size"
ask_price = "ask_price"
ask_size = "ask_size"

[rest]
url = "https://api.example-hk-vendor.com"
ticker_path = "/v2/quote?symbol={symbol}"
message_path = "quote"
timestamp = { format = "ms_string" }
[rest.fields]
ts = "updated_ms"
bid_price = "bid.price"
bid_size = "bid.size"
ask_price = "ask.price"
ask_size = "ask.size"
"""
    )
    assert load_mapping(toml) == load_mapping(HK)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown field `colour`"),
        ({"fields": {"symbol": "s"}}, "missing required field `ts` - at `$.fields`"),
        ({"heartbeat_interval": "30"}, "Expected `float`, got `str` - at `$.heartbeat_interval`"),
        ({"name": "Bad Name"}, "at `$.name`"),
        ({"timestamp": {"format": "minutes"}}, "at `$.timestamp.format`"),
        ({"timestamp": {"format": "iso", "tz": "Asia/Atlantis"}}, "`timestamp.tz`"),
        ({"ws_url": "https://vendor.example"}, "`ws_url` must start with ws://"),
        ({"subscribe": None}, "`subscribe` is required"),
        ({"heartbeat_interval": 0}, "`heartbeat` needs `heartbeat_interval` > 0"),
        ({"stale_after": 30}, "`stale_after` must be > 0 and longer"),
        ({"ws_url": None, "subscribe": None}, "needs `ws_url` (a tick stream) or `rest`"),
        ({"volume_is_cumulative": True}, "`volume_is_cumulative` needs `fields.volume`"),
        (
            {"rest": {"url": "https://v.example", "ticker_path": "/quote"}},
            "`rest.ticker_path` must start with / and contain {symbol}",
        ),
        (
            {"rest": {"url": "ws://v.example", "ticker_path": "/q/{symbol}"}},
            "`rest.url` must start with http://",
        ),
        ({"message_path": "data..ticks"}, "`message_path` is not a dotted path"),
    ],
)
def test_bad_mapping_is_a_usage_error_naming_file_and_key(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, mapping(**change))
    with pytest.raises(UsageError, match=r"vendor mapping .*m\.json: ") as err:
        load_mapping(path)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ask_size": None}, "missing `fields.ask_size`"),
        ({"last_size": None}, "a trade needs `fields.last_price` and"),
        ({"volume": "vol"}, "map one of `fields.last_size` and `fields.volume`"),
        (
            {"bid_price": None, "bid_size": None, "ask_price": None, "ask_size": None},
            None,  # trades only: fine
        ),
        (
            {"last_price": None, "last_size": None, "trade_id": "id"},
            "`fields.trade_id` and `fields.side` need `fields.last_price`",
        ),
    ],
)
def test_field_sets_must_make_a_quote_or_a_trade(
    tmp_path: Path, fields: dict[str, Any], message: str | None
) -> None:
    base = mapping()["fields"]
    merged = {k: v for k, v in {**base, **fields}.items() if v is not None}
    path = write(tmp_path, mapping(fields=merged))
    if message is None:
        load_mapping(path)
        return
    with pytest.raises(UsageError) as err:
        load_mapping(path)
    assert message in str(err.value)


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read vendor mapping .*nope\.json"):
        load_mapping(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": ]')
    with pytest.raises(UsageError, match=r"bad\.json: .*malformed"):
        load_mapping(bad)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("name = ")
    with pytest.raises(UsageError, match=r"bad\.toml: "):
        load_mapping(bad_toml)


# -- messages to send -----------------------------------------------------------------------
def test_subscribe_templates() -> None:
    symbols = ("0700.HK", "0005.HK")
    per_symbol = protocol(symbols, subscribe={"op": "sub", "topic": "tick.{symbol}"})
    assert per_symbol.subscribe_messages() == [
        '{"op":"sub","topic":"tick.0700.HK"}',
        '{"op":"sub","topic":"tick.0005.HK"}',
    ]
    several = protocol(
        symbols,
        subscribe=[{"op": "auth", "key": "k"}, {"op": "sub", "codes": "{symbols}", "depth": 1}],
    )
    assert several.subscribe_messages() == [
        '{"op":"auth","key":"k"}',
        '{"op":"sub","codes":["0700.HK","0005.HK"],"depth":1}',
    ]
    joined = protocol(symbols, subscribe={"params": "Q.{symbols}"})
    assert joined.subscribe_messages() == ['{"params":"Q.0700.HK,0005.HK"}']
    assert protocol(symbols, subscribe=[]).subscribe_messages() == []


def test_heartbeat_as_text_or_none() -> None:
    assert protocol(heartbeat="ping").heartbeat_message() == "ping"
    quiet = protocol(heartbeat=None, heartbeat_interval=0)
    assert quiet.heartbeat_message() is None
    assert type(quiet).heartbeat_interval == 0.0


def test_pair_without_currency_splits_the_symbol() -> None:
    assert protocol(("BTC-USD",), currency=None).pair("BTC-USD") == ("BTC", "USD")


# -- ticks ----------------------------------------------------------------------------------
def test_hk_tick_stream_quotes_and_cumulative_volume_trades() -> None:
    venue = vendor_protocol(load_mapping(HK))(["0700.HK"])
    first = venue.parse(hk_tick(), 7)
    assert first == [
        Quote("hk-vendor", "0700.HK", T0_US, 7, 385.0, 32000.0, 385.2, 18500.0)
    ]  # the first tick only sets the volume baseline
    second = venue.parse(hk_tick("2026-11-21 09:30:00.456", "1205700"), 8)
    assert second[0] == Trade(
        "hk-vendor", "0700.HK", T0_US + 333_000, 8, 385.2, 400.0, "buy", f"{T0_US + 333_000}-0"
    )
    assert isinstance(second[1], Quote)
    assert trades(venue.parse(hk_tick("2026-11-21 09:30:01", "1205700"), 9)) == []


def test_the_configured_ack_says_subscribed_once_pongs_are_ignored_unknowns_malformed() -> None:
    venue = vendor_protocol(load_mapping(HK))(["0700.HK", "0005.HK"])
    assert venue.parse(b'{"type":"pong","ts":1}', 1) == []
    ack = b'{"type":"subscribed","symbols":["0700.HK"]}'
    assert venue.parse(ack, 1) == [Subscribed("hk-vendor", ["0700.HK", "0005.HK"], 1)]
    assert venue.parse(ack, 2) == []  # later acknowledgements are skipped like ignored ones
    with pytest.raises(ProtocolError, match="no ticks at `data`"):
        venue.parse(b'{"type":"error","msg":"bad symbol"}', 1)


def test_cumulative_volume_is_decimal_exact_and_handles_resets_and_stale_ticks() -> None:
    venue = protocol(
        fields={"symbol": "s", "ts": "t", "last_price": "p", "volume": "v"},
        timestamp={"format": "ms"},
        volume_is_cumulative=True,
    )

    def at(t: int, volume: Any, price: str = "10.0") -> list[tuple[str, float, float, str]]:
        msg = {"s": "AAPL", "t": 1763712000000 + t, "p": price, "v": volume}
        return trades(venue.parse(json.dumps(msg).encode(), 0))

    assert at(0, "0.1") == []  # baseline
    ((_, _, size, _),) = at(1, "0.3")
    assert size == 0.2  # exact: 0.3 - 0.1 in floats would be 0.19999999999999998
    assert at(2, 0.3) == []  # unchanged: no trade (JSON number is fine too)
    assert at(1, "0.25") == []  # older than the baseline: out of order, ignored
    assert [s for _, _, s, _ in at(3, "0.7")] == [0.4]  # still against 0.3
    assert at(4, "0.05") == []  # lower at a later time: a new session
    assert [s for _, _, s, _ in at(5, "0.15")] == [0.1]


def test_per_tick_size_zero_or_absent_is_no_trade() -> None:
    venue = protocol()
    assert trades(venue.parse(tick(last_price="1.5", volume="0"), 0)) == []
    assert trades(venue.parse(tick(last_price="1.5"), 0)) == []
    with pytest.raises(ProtocolError, match="a last_size but no last_price"):
        venue.parse(tick(volume="10"), 0)


def test_prices_are_read_from_the_wire_text_exactly() -> None:
    (event,) = protocol().parse(
        tick(bid_price="0.000051", bid_size="1e3", ask_price=0.000052, ask_size=7), 0
    )
    assert event == Quote("eqv", "AAPL", 1763712000123000, 0, 5.1e-05, 1000.0, 5.2e-05, 7.0)


def test_synthesized_trade_ids_count_trades_at_the_same_time() -> None:
    venue = protocol()
    ids = [
        trades(venue.parse(tick(ts, last_price="10", volume="1"), 0))[0][0]
        for ts in (1763712000123, 1763712000123, 1763712000124, 1763712000123)
    ]
    assert ids == [
        "1763712000123000-0",
        "1763712000123000-1",
        "1763712000124000-0",
        "1763712000123000-0",  # times went back: documented limit of synthesized ids
    ]


def test_mapped_trade_id_and_side_with_a_value_map() -> None:
    fields = {**mapping()["fields"], "trade_id": "id"}
    fields["side"] = {"path": "dir", "values": {"1": "buy", "2": "sell", "0": "infer"}}
    venue = protocol(fields=fields)
    assert trades(venue.parse(tick(last_price="10", volume="5", id=981, dir=2), 0)) == [
        ("981", 10.0, 5.0, "sell")
    ]
    # "infer" falls back to the tick rule: up from 10 → buy
    assert trades(venue.parse(tick(last_price="10.5", volume="5", id="982", dir=0), 0)) == [
        ("982", 10.5, 5.0, "buy")
    ]
    with pytest.raises(ProtocolError, match="side value '3' is not in the mapping"):
        venue.parse(tick(last_price="10", volume="5", id=983, dir=3), 0)
    with pytest.raises(ProtocolError, match="side value 'null'"):
        venue.parse(tick(last_price="10", volume="5", id=983), 0)
    with pytest.raises(
        ProtocolError, match=r"Expected `int \| str \| null`, got `float` - at `\$.id`"
    ):
        venue.parse(tick(last_price="10", volume="5", id=1.5, dir=1), 0)
    with pytest.raises(ProtocolError, match="trade id must be a non-empty string or integer"):
        venue.parse(tick(last_price="10", volume="5", id="", dir=1), 0)


def test_boolean_side_values_are_keyed_by_their_json_text() -> None:
    fields = {**mapping()["fields"], "side": {"path": "m", "values": {"true": "sell"}}}
    venue = protocol(fields=fields)
    assert trades(venue.parse(tick(last_price="10", volume="5", m=True), 0))[0][3] == "sell"


def test_side_inference_quote_rule_then_tick_rule() -> None:
    venue = protocol()
    q = {"bid_price": "10.0", "bid_size": "1", "ask_price": "10.2", "ask_size": "1"}

    def side(price: str, **quote: str) -> str:
        events = venue.parse(tick(last_price=price, volume="1", **quote), 0)
        return trades(events)[0][3]

    assert side("10.1") == "buy"  # nothing to compare: the documented fallback
    assert side("10.2", **q) == "buy"  # no earlier quote: the tick's own, at the ask
    assert side("10.0") == "sell"  # at the bid of the latest quote
    assert side("9.9") == "sell"  # through the bid
    assert side("10.1") == "buy"  # inside the spread: tick rule, up from 9.9
    assert side("10.1") == "buy"  # zero tick: the previous side
    assert side("10.05") == "sell"  # down
    # the quote BEFORE the tick decides: this tick's new quote (ask 10.4) does not
    assert side("10.2", **{**q, "ask_price": "10.4"}) == "buy"


def test_batches_and_wrapped_ticks() -> None:
    venue = protocol(("AAPL", "MSFT"), message_path="payload.ticks")
    batch = {
        "payload": {
            "ticks": [
                {"symbol": "AAPL", "timestamp": "1763712000123", "last_price": "1", "volume": "2"},
                {"symbol": "MSFT", "timestamp": "1763712000124", "last_price": "3", "volume": "4"},
            ]
        }
    }
    events = venue.parse(json.dumps(batch).encode(), 0)
    assert [(e.symbol, e.price) for e in events if isinstance(e, Trade)] == [
        ("AAPL", 1.0),
        ("MSFT", 3.0),
    ]
    flat = protocol()
    pair = [json.loads(tick(last_price="1", volume="2")), json.loads(tick(last_price="1.1"))]
    assert len(flat.parse(json.dumps(pair).encode(), 0)) == 1  # a top-level list is a batch


def test_a_quarantined_batch_changes_no_state() -> None:
    venue = protocol(
        fields={"symbol": "s", "ts": "t", "last_price": "p", "volume": "v"},
        timestamp={"format": "us"},
        volume_is_cumulative=True,
    )
    good = {"s": "AAPL", "t": 1763712000000000, "p": "5", "v": "100"}
    assert venue.parse(json.dumps(good).encode(), 0) == []
    batch = [{**good, "t": good["t"] + 1, "v": "150"}, {**good, "p": "-1", "v": "160"}]
    with pytest.raises(ProtocolError, match="last_price out of range"):
        venue.parse(json.dumps(batch).encode(), 0)
    later = {**good, "t": good["t"] + 2, "v": "170"}
    assert [t[2] for t in trades(venue.parse(json.dumps(later).encode(), 0))] == [70.0]


@pytest.mark.parametrize(
    ("fmt", "value", "us"),
    [
        ("s", 1763712000, 1763712000000000),
        ("s", 1763712000.123456, 1763712000123456),
        ("ms", 1763712000123, 1763712000123000),
        ("ms", 1763712000123.5, 1763712000123500),
        ("us", 1763712000123456, 1763712000123456),
        ("ms_string", "1763712000123", 1763712000123000),
        ("iso", "2025-11-21T08:00:00.123456789Z", 1763712000123456),
        ("iso", "2025-11-21T16:00:00.5+08:00", 1763712000500000),
        ("iso", "2025-11-21 08:00:00", 1763712000000000),  # naive, default tz UTC
    ],
)
def test_timestamp_formats(fmt: str, value: Any, us: int) -> None:
    venue = protocol(timestamp={"format": fmt})
    msg = {"symbol": "AAPL", "timestamp": value, "bid_price": "1", "bid_size": "1"}
    msg |= {"ask_price": "2", "ask_size": "1"}
    (event,) = venue.parse(json.dumps(msg).encode(), 0)
    assert event.ts == us


def test_naive_local_time_in_the_mapping_zone() -> None:
    venue = protocol(timestamp={"format": "iso", "tz": "Asia/Hong_Kong"})
    (event,) = venue.parse(
        b'{"symbol":"AAPL","timestamp":"2026-11-21 09:30:00.123",'
        b'"bid_price":"1","bid_size":"1","ask_price":"2","ask_size":"1"}',
        0,
    )
    assert event.ts == T0_US


@pytest.mark.parametrize(
    ("fmt", "value", "reason"),
    [
        ("ms", "1763712000123", "is not a number of ms"),
        ("ms", True, r"got `bool` - at `\$.timestamp`"),
        ("ms", 1763712000, "read as ms is not in 2000-2099"),  # seconds mapped as ms
        ("ms_string", 1763712000123, "is not a string of milliseconds"),
        ("ms_string", "17637120001.5", "is not a string of milliseconds"),
        ("iso", "21/11/2026 09:30", "bad ISO 8601 timestamp"),
        ("iso", 1763712000, "is not an ISO 8601 string"),
    ],
)
def test_bad_timestamps_are_protocol_errors(fmt: str, value: Any, reason: str) -> None:
    venue = protocol(timestamp={"format": fmt})
    with pytest.raises(ProtocolError, match=reason):
        venue.parse(json.dumps({"symbol": "AAPL", "timestamp": value}).encode(), 0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b'["x"]', r"Expected `object`, got `str` - at `\$\[0\]`"),
        (b'{"timestamp":"1763712000123"}', "tick has no symbol"),
        (b'{"symbol":7,"timestamp":"1763712000123"}', r"got `int` - at `\$.symbol`"),
        (b'{"symbol":"AAPL"}', "no timestamp at `timestamp`"),
        (tick(bid_price="1", bid_size="1"), "incomplete quote"),
        (tick(bid_price="0", bid_size="1", ask_price="1", ask_size="1"), "bid_price out of range"),
        (
            tick(bid_price="x", bid_size="1", ask_price="1", ask_size="1"),
            r"Expected `float \| null`, got `str` - at `\$.bid_price`",
        ),
        (tick(bid_price="1", bid_size="-1", ask_price="1", ask_size="1"), "bid_size out of range"),
        (
            tick(bid_price=True, bid_size="1", ask_price="1", ask_size="1"),
            r"got `bool` - at `\$.bid_price`",
        ),
        (tick(last_price="NaN", volume="1"), "last_price out of range"),
        (tick(last_price="1", volume="inf"), "last_size out of range"),
        (tick(last_price="1", volume=[1]), r"got `array` - at `\$.volume`"),
    ],
)
def test_malformed_ticks_are_protocol_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        protocol().parse(raw, 0)


def test_cumulative_volume_must_be_a_decimal() -> None:
    venue = vendor_protocol(load_mapping(HK))(["0700.HK"])
    with pytest.raises(ProtocolError, match="bad decimal in volume"):
        venue.parse(hk_tick(volume="12k"), 0)
    with pytest.raises(ProtocolError, match="volume out of range"):
        venue.parse(hk_tick(volume="-5"), 0)


def test_unsubscribed_symbols_pass_through_for_the_feed_to_quarantine() -> None:
    (event,) = protocol().parse(
        json.dumps(
            {"symbol": "TSLA", "timestamp": "1763712000123", "last_price": "1", "volume": "1"}
        ).encode(),
        0,
    )
    assert event.symbol == "TSLA"


# -- the polling source ---------------------------------------------------------------------
def test_rest_ticker_with_its_own_paths_and_time_format() -> None:
    venue = vendor_protocol(load_mapping(HK))(["0700.HK"])
    body = {
        "quote": {
            "symbol": "0700.HK",
            "updated_ms": "1795224600123",
            "bid": {"price": "385.000", "size": 32000},
            "ask": {"price": "385.200", "size": 18500},
        }
    }
    quote = venue.parse_ticker(json.dumps(body).encode(), "0700.HK", 9)
    assert quote == Quote("hk-vendor", "0700.HK", T0_US, 9, 385.0, 32000.0, 385.2, 18500.0)
    del body["quote"]["symbol"]  # the URL named it
    assert venue.parse_ticker(json.dumps(body).encode(), "0700.HK", 9) == quote
    listed = {"quote": [body["quote"]]}
    assert venue.parse_ticker(json.dumps(listed).encode(), "0700.HK", 9) == quote


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "REST ticker: JSON is malformed"),
        (b'{"error":"rate limited"}', "the body holds no ticker object"),
        (
            b'{"quote":{"symbol":"0005.HK","updated_ms":"1795224600123","bid":{"price":"1",'
            b'"size":1},"ask":{"price":"2","size":1}}}',
            "REST ticker for '0005.HK', asked for '0700.HK'",
        ),
        (b'{"quote":{"updated_ms":"1795224600123"}}', "the body has no bid and ask"),
    ],
)
def test_bad_rest_ticker_bodies(body: bytes, reason: str) -> None:
    venue = vendor_protocol(load_mapping(HK))(["0700.HK"])
    with pytest.raises(ProtocolError, match=reason):
        venue.parse_ticker(body, "0700.HK", 0)


def test_rest_only_vendor_and_symbol_quoting() -> None:
    venue = protocol(
        ("BRK B",),
        ws_url=None,
        subscribe=None,
        rest={"url": "https://v.example", "ticker_path": "/t/{symbol}"},
    )
    assert type(venue).default_ws_url == ""
    assert venue.ticker_path("BRK B") == "/t/BRK%20B"
    assert protocol().ticker_path("AAPL") is None


# -- message shapes -------------------------------------------------------------------------
def test_nested_paths_and_list_indices() -> None:
    """A depth push in AllTick's documented shape: top of book at ``bids.0`` / ``asks.0``."""
    venue = protocol(
        ("700.HK",),
        message_path="data",
        ignore=[{"cmd_id": 22001}],
        fields={
            "symbol": "code",
            "ts": "tick_time",
            "bid_price": "bids.0.price",
            "bid_size": "bids.0.volume",
            "ask_price": "asks.0.price",
            "ask_size": "asks.0.volume",
        },
    )
    push = {
        "cmd_id": 22999,
        "data": {
            "code": "700.HK",
            "seq": "30689",
            "tick_time": "1677830357227",
            "bids": [{"price": "319.200", "volume": "3200"}, {"price": "319.0", "volume": "1"}],
            "asks": [{"price": "319.400", "volume": "8100"}],
        },
    }
    (event,) = venue.parse(json.dumps(push).encode(), 0)
    assert event == Quote("eqv", "700.HK", 1677830357227000, 0, 319.2, 3200.0, 319.4, 8100.0)
    assert venue.parse(b'{"cmd_id":22001,"data":{}}', 0) == []  # the pong
    push["data"]["asks"] = []  # an empty side: the quote is incomplete
    with pytest.raises(ProtocolError, match="incomplete quote"):
        venue.parse(json.dumps(push).encode(), 0)


def test_ignored_messages_of_another_shape_are_still_ignored() -> None:
    venue = vendor_protocol(load_mapping(HK))(["0700.HK"])
    assert venue.parse(b'{"type":"pong","data":"ok"}', 0) == []  # "data" is not ticks here
    with pytest.raises(ProtocolError, match=r"got `str` - at `\$.data`"):
        venue.parse(b'{"type":"news","data":"halt"}', 0)


def test_decimal_text_outside_json_number_grammar_is_malformed() -> None:
    with pytest.raises(ProtocolError, match=r"got `str` - at `\$.bid_price`"):
        protocol().parse(tick(bid_price=".5", bid_size="1", ask_price="1", ask_size="1"), 0)


def test_a_top_level_list_is_a_batch_even_with_a_message_path() -> None:
    venue = vendor_protocol(load_mapping(HK))(["0700.HK"])
    batch = [json.loads(hk_tick())["data"][0], json.loads(hk_tick(volume="1205400"))["data"][0]]
    assert len(venue.parse(json.dumps(batch).encode(), 0)) == 3  # 2 quotes + the 100 traded


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ignore": [{}]}, "`ignore[0]` is empty"),
        ({"ack": [{"type": "ok"}, {}]}, "`ack[1]` is empty"),
        ({"ignore": [{"symbol.code": "x"}]}, "reads inside a value another key reads"),
        (
            {"fields": {**mapping()["fields"], "bid_size": "bid", "bid_price": "bid.px"}},
            "reads as a value what other keys read inside",
        ),
        (
            {"fields": {**mapping()["fields"], "bid_price": "q.0", "ask_price": "q.px"}},
            "as a list and as an object",
        ),
    ],
)
def test_contradicting_paths_are_usage_errors(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as err:
        load_mapping(write(tmp_path, mapping(**change)))
    assert message in str(err.value)
