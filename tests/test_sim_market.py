"""The simulator's market engine: determinism, book invariants and exact decimal output."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.sim.market import (
    MAX_LEVELS,
    MIN_LEVELS,
    Delta,
    Market,
    Message,
    Snapshot,
    Trade,
    base_price,
    format_fixed,
    price_str,
    size_str,
    tick_size,
)

SYMBOLS = ("BTC-USD", "ETH-USD", "DOGE-EUR")
DECIMAL = re.compile(r"\d+\.\d+")


class RefBook:
    """A dict-of-strings book built only from wire messages, as a client would keep it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.seq = snapshot.seq
        self.bids = {Decimal(p): Decimal(s) for p, s in snapshot.bids}
        self.asks = {Decimal(p): Decimal(s) for p, s in snapshot.asks}

    def apply(self, delta: Delta) -> None:
        for side, levels in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for p, s in levels:
                if Decimal(s) == 0:
                    del side[Decimal(p)]
                else:
                    side[Decimal(p)] = Decimal(s)
        self.seq = delta.seq

    def same_as(self, snapshot: Snapshot) -> bool:
        return RefBook(snapshot).bids == self.bids and RefBook(snapshot).asks == self.asks


def run(seed: int, steps: int, ts: int = 0) -> list[Message]:
    market = Market(seed, SYMBOLS)
    return [m for i in range(steps) for m in market.step(SYMBOLS[i % len(SYMBOLS)], ts + i)]


def without_ts(messages: list[Message]) -> list[object]:
    return [msgspec.structs.replace(m, ts=0) for m in messages]


def test_same_seed_gives_the_same_messages_except_ts() -> None:
    assert without_ts(run(7, 3000, ts=0)) == without_ts(run(7, 3000, ts=10**15))


def test_different_seeds_give_different_flow() -> None:
    assert without_ts(run(1, 500)) != without_ts(run(2, 500))


def test_a_symbols_stream_does_not_depend_on_the_other_symbols() -> None:
    alone = Market(5, ["ETH-USD"])
    mixed = Market(5, ["BTC-USD", "ETH-USD"])
    a = [m for _ in range(300) for m in alone.step("ETH-USD", 1)]
    b = []
    for _ in range(300):
        mixed.step("BTC-USD", 1)
        b.extend(mixed.step("ETH-USD", 1))
    assert a == b


def test_invariants_hold_over_a_long_run() -> None:
    market = Market(11, SYMBOLS)
    refs = {s: RefBook(market.snapshot(s)) for s in SYMBOLS}
    trade_ids = dict.fromkeys(SYMBOLS, 0)
    for i in range(12_000):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        messages = market.step(symbol, i)
        assert isinstance(messages[-1], Delta), "every step ends with its delta"
        for message in messages:
            assert message.symbol == symbol
            assert message.seq == refs[symbol].seq + 1
            if isinstance(message, Trade):
                refs[symbol].seq = message.seq
                assert message.trade_id == trade_ids[symbol] + 1
                trade_ids[symbol] = message.trade_id
                assert DECIMAL.fullmatch(message.price) and DECIMAL.fullmatch(message.size)
                assert Decimal(message.size) > 0
            else:
                refs[symbol].apply(message)
        book = market.snapshot(symbol)
        assert book.seq == refs[symbol].seq
        bids = [Decimal(p) for p, _ in book.bids]
        asks = [Decimal(p) for p, _ in book.asks]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
        assert bids[0] < asks[0], "the true book is never crossed"
        assert all(Decimal(s) > 0 for _, s in book.bids + book.asks)
        assert MIN_LEVELS <= len(bids) <= MAX_LEVELS
        assert MIN_LEVELS <= len(asks) <= MAX_LEVELS
    for symbol in SYMBOLS:
        assert refs[symbol].same_as(market.snapshot(symbol)), "deltas rebuild the true book"


def test_a_sweep_is_one_trade_per_level_then_one_delta_of_those_levels() -> None:
    market = Market(3, ["BTC-USD"])
    sweeps = 0
    for i in range(5000):
        before = market.snapshot("BTC-USD")
        messages = market.step("BTC-USD", i)
        trades = [m for m in messages if isinstance(m, Trade)]
        if not trades:
            continue
        sweeps += len(trades) > 1
        delta = messages[-1]
        assert isinstance(delta, Delta) and len(messages) == len(trades) + 1
        taker = trades[0].side
        assert all(t.side == taker for t in trades)
        resting = dict(before.asks if taker == "buy" else before.bids)
        touched = delta.asks if taker == "buy" else delta.bids
        assert (delta.bids if taker == "buy" else delta.asks) == []
        assert [p for p, _ in touched] == [t.price for t in trades], "best level first"
        for trade, (price, left) in zip(trades, touched, strict=True):
            assert Decimal(trade.size) + Decimal(left) == Decimal(resting[price])
    assert sweeps > 50, "multi-level sweeps happen regularly"


def test_a_full_side_evicts_its_farthest_level_instead_of_growing() -> None:
    market = Market(6, ["ETH-USD"])
    book = market._books["ETH-USD"]
    top = book.best_bid() - 10 * book.tick  # a full side with room near the spread
    book.bids = {top - i * book.tick: 1 for i in range(MAX_LEVELS)}
    evictions = 0
    for _ in range(300):
        farthest = min(book.bids)
        delta = book._add(is_bid=True)
        assert len(book.bids) == MAX_LEVELS
        if len(delta.bids) == 2:
            evictions += 1
            assert (price_str(farthest), "0") in delta.bids
    assert evictions > 0


def test_step_limit_caps_the_messages_of_one_step() -> None:
    market = Market(9, ["BTC-USD"])
    for i in range(3000):
        limit = 1 + i % 3
        assert 1 <= len(market.step("BTC-USD", i, limit)) <= limit
    with pytest.raises(ValueError):
        market.step("BTC-USD", 0, 0)


@pytest.mark.parametrize("count", [1, 2, 17, 1000])
def test_generate_returns_exactly_count_messages_with_whole_sweeps(count: int) -> None:
    messages = Market(4, SYMBOLS).generate(count, 0)
    assert len(messages) == count
    last: dict[str, Message] = {}
    for message in messages:
        last[message.symbol] = message
    assert all(isinstance(m, Delta) for m in last.values()), "no sweep is cut off its delta"


def test_snapshot_is_the_whole_book_and_carries_the_last_seq() -> None:
    market = Market(2, ["ETH-USD"])
    market.step("ETH-USD", 5)
    market.step("ETH-USD", 9)
    snap = market.snapshot("ETH-USD")
    assert snap.seq == market.seq("ETH-USD") >= 2
    assert snap.ts == 9
    encoded = msgspec.json.decode(msgspec.json.encode(snap))
    assert list(encoded) == ["type", "symbol", "seq", "ts", "bids", "asks", "last_trade_id"]
    assert encoded["type"] == "snapshot"


def test_wire_shapes_follow_the_protocol() -> None:
    trade = Trade("BTC-USD", 1043, 1, 5821, "30000.50", "0.300", "buy")
    assert msgspec.json.encode(trade) == (
        b'{"type":"trade","symbol":"BTC-USD","seq":1043,"ts":1,"trade_id":5821,'
        b'"price":"30000.50","size":"0.300","side":"buy"}'
    )
    delta = Delta("BTC-USD", 1042, 2, [("29999.50", "0")], [("30001.00", "2.000")])
    assert msgspec.json.encode(delta) == (
        b'{"type":"delta","symbol":"BTC-USD","seq":1042,"ts":2,'
        b'"bids":[["29999.50","0"]],"asks":[["30001.00","2.000"]]}'
    )


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(0, 12))
def test_format_fixed_is_exact_and_never_scientific(value: int, decimals: int) -> None:
    text = format_fixed(value, decimals)
    assert "e" not in text.lower()
    assert Fraction(text) == Fraction(value, 10**decimals)


def test_prices_and_sizes_use_fixed_decimals() -> None:
    assert price_str(3_000_050) == "30000.50"
    assert price_str(5) == "0.05"
    assert size_str(300) == "0.300"
    assert size_str(2_000) == "2.000"
    assert size_str(0) == "0", "deleted levels are spelled exactly as the protocol says"


def test_base_prices_are_recognisable_or_deterministically_hashed() -> None:
    assert base_price("BTC-USD") == 3_000_000
    assert base_price("ETH-USD") == 200_000
    assert base_price("SOL-USD") == base_price("SOL-USD")
    assert base_price("SOL-USD") != base_price("ADA-USD")
    for name in ("SOL-USD", "X", "AAPL", "a.b_c-9"):
        assert 1_000 <= base_price(name) <= 999_000
    assert tick_size(3_000_000) == 50
    assert tick_size(200_000) == 2
    assert tick_size(1_000) == 1


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(["BTC-USD", "ETH-USD", "ZZZ", "Q-1"]))
def test_any_seed_and_symbol_keep_a_valid_book(seed: int, symbol: str) -> None:
    market = Market(seed, [symbol])
    ref = RefBook(market.snapshot(symbol))
    for i in range(400):
        for message in market.step(symbol, i):
            if isinstance(message, Delta):
                ref.apply(message)
    assert ref.same_as(market.snapshot(symbol))
    assert max(ref.bids) < min(ref.asks)
