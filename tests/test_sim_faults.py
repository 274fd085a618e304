"""Fault decisions and garbage: each variant is wrong in exactly the way the ledger says."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import msgspec
import pytest

from workbench.feeds.wsframe import OP_BINARY, OP_TEXT
from workbench.sim.faults import (
    COMMON_VARIANTS,
    HUGE_SIZE,
    FaultInjector,
    FaultRates,
    Variant,
    next_in_turn,
)
from workbench.sim.market import Delta, Market, Message, Trade

TRADE = Trade("BTC-USD", 1043, 1_763_712_000_001_300, 5821, "30000.50", "0.300", "buy")
DELTA = Delta("BTC-USD", 1042, 1_763_712_000_001_234, [("29999.50", "0")], [("30001.00", "2.0")])
CLIENT_LIMIT = 4 * 1024 * 1024
REQUIRED = {
    "trade": {"type", "symbol", "seq", "ts", "trade_id", "price", "size", "side"},
    "delta": {"type", "symbol", "seq", "ts", "bids", "asks"},
}


def decisions(seed: int, rates: FaultRates, n: int, conns: list[int]) -> list[object]:
    injector = FaultInjector(seed, rates)
    messages: list[Message] = [TRADE, DELTA]
    return [injector.decide(messages[i % 2], conns) for i in range(n)]


def test_decisions_are_a_function_of_the_seed() -> None:
    rates = FaultRates(0.1, 0.1, 0.1, 0.1)
    assert decisions(3, rates, 2000, [1, 2, 3]) == decisions(3, rates, 2000, [1, 2, 3])
    assert decisions(3, rates, 2000, [1, 2, 3]) != decisions(4, rates, 2000, [1, 2, 3])


def test_zero_rates_never_fault_and_report_disabled() -> None:
    injector = FaultInjector(1, FaultRates())
    assert not injector.enabled
    assert all(injector.decide(DELTA, [1, 2]) is None for _ in range(1000))


def test_fault_frequencies_follow_the_rates() -> None:
    injector = FaultInjector(5, FaultRates(malformed=0.05, gap=0.1, duplicate=0.15, crossed=0.2))
    kinds: Counter[str] = Counter()
    n = 40_000
    for i in range(n):
        fault = injector.decide(DELTA if i % 2 else TRADE, [7, 9])
        if fault is not None:
            kinds[fault.kind] += 1
            assert fault.conn in (7, 9)
    assert kinds["malformed"] == pytest.approx(0.05 * n, rel=0.1)
    assert kinds["gap"] == pytest.approx(0.1 * n, rel=0.1)
    assert kinds["duplicate"] == pytest.approx(0.15 * n, rel=0.1)
    assert kinds["crossed"] == pytest.approx(0.2 * n / 2, rel=0.1), "only deltas get crossed"


def test_faults_spread_over_the_connections_and_need_one() -> None:
    injector = FaultInjector(2, FaultRates(gap=1.0))
    conns = Counter(f.conn for f in (injector.decide(TRADE, [1, 2, 3]) for _ in range(3000)) if f)
    assert set(conns) == {1, 2, 3} and min(conns.values()) > 800
    assert injector.decide(TRADE, []) is None


def test_about_one_malformed_in_twenty_is_huge() -> None:
    injector = FaultInjector(8, FaultRates(malformed=1.0))
    variants = Counter(
        f.variant for f in (injector.decide(TRADE, [1]) for _ in range(20_000)) if f is not None
    )
    assert variants["huge"] == pytest.approx(1000, rel=0.15)
    assert set(variants) == {*COMMON_VARIANTS, "huge"}


def json_or_none(payload: bytes) -> object:
    try:
        return msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None


@pytest.mark.parametrize("message", [TRADE, DELTA], ids=["trade", "delta"])
@pytest.mark.parametrize("seed", range(20))
def test_each_variant_is_broken_as_named(message: Message, seed: int) -> None:
    injector = FaultInjector(seed, FaultRates(malformed=1.0))
    required = REQUIRED["trade" if isinstance(message, Trade) else "delta"]
    original = msgspec.json.decode(msgspec.json.encode(message))
    variant: Variant
    for variant in (*COMMON_VARIANTS, "huge"):
        opcode, payload = injector.garble(variant, message)
        assert opcode == (OP_BINARY if variant == "binary" else OP_TEXT)
        if variant in ("truncated", "not_json"):
            assert json_or_none(payload) is None
        elif variant == "bad_utf8":
            with pytest.raises(UnicodeDecodeError):
                payload.decode("utf-8")
        elif variant == "wrong_type":
            garbled = msgspec.json.decode(payload)
            assert set(garbled) == required
            changed = [k for k in required if type(garbled[k]) is not type(original[k])]
            assert len(changed) == 1
            assert all(garbled[k] == original[k] for k in required - set(changed))
        elif variant == "missing_field":
            assert len(required - set(msgspec.json.decode(payload))) == 1
        elif variant == "huge":
            assert len(payload) == HUGE_SIZE > CLIENT_LIMIT
            assert json_or_none(payload) is not None
        else:
            assert 16 <= len(payload) <= 512


def test_crossed_level_goes_through_the_other_side() -> None:
    market = Market(1, ["BTC-USD"])
    injector = FaultInjector(1, FaultRates(crossed=1.0))
    sides: Counter[str] = Counter()
    for i in range(400):
        delta = market.step("BTC-USD", i)[-1]
        assert isinstance(delta, Delta)
        best_bid, best_ask, tick = market.top("BTC-USD")
        crossed, level = injector.cross(delta, best_bid, best_ask, tick)
        sides[level.side] += 1
        assert Decimal(level.size) > 0
        if level.side == "bid":
            assert crossed.bids == [(level.price, level.size), *delta.bids]
            assert crossed.asks == delta.asks
            assert Decimal(level.price) * 100 > best_ask
        else:
            assert crossed.asks == [(level.price, level.size), *delta.asks]
            assert crossed.bids == delta.bids
            assert Decimal(level.price) * 100 < best_bid
        assert crossed.seq == delta.seq
    assert sides["bid"] > 100 and sides["ask"] > 100


def test_round_robin_takes_the_next_number_and_wraps() -> None:
    assert next_in_turn([1, 2, 3], 0) == 1
    assert next_in_turn([1, 2, 3], 1) == 2
    assert next_in_turn([1, 2, 3], 3) == 1
    assert next_in_turn([2, 5, 9], 3) == 5, "a connection that left is simply skipped"
    with pytest.raises(ValueError):
        next_in_turn([], 1)
