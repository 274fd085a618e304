"""The account: cash, position and round trips from fills, by hand; its starting cash."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.backtest import backtest, sweep
from workbench.core.portfolio import Portfolio
from workbench.errors import UsageError
from workbench.events import Fill


def fill(side: str, size: float, price: float, fee: float = 0.0, ts: int = 0) -> Fill:
    return Fill("o", "X", side, ts, price, size, fee, "taker")  # type: ignore[arg-type]


def test_scaling_in_and_out_makes_one_trip_at_average_prices() -> None:
    book = Portfolio("X", 1_000.0)
    book.apply(fill("buy", 1, 100, fee=0.1, ts=1))
    book.apply(fill("buy", 1, 110, fee=0.1, ts=2))
    assert book.entry_price == 105
    assert book.apply(fill("sell", 1, 120, fee=0.1, ts=3)) is None
    trip = book.apply(fill("sell", 1, 90, fee=0.1, ts=4))
    assert trip is not None
    assert (trip.direction, trip.entry_ts, trip.exit_ts, trip.size) == ("long", 1, 4, 2)
    assert (trip.entry_price, trip.exit_price) == (105, 105)
    assert trip.pnl == pytest.approx((120 - 105) + (90 - 105) - 0.4)
    assert book.cash == pytest.approx(1_000 - 100 - 110 + 120 + 90 - 0.4)
    assert book.position == 0 and book.fees_paid == pytest.approx(0.4)
    assert book.traded_notional == 420


def test_a_flip_closes_one_trip_and_opens_the_next_splitting_the_fee() -> None:
    book = Portfolio("X", 0.0)
    book.apply(fill("sell", 2, 50, fee=0.2, ts=1))
    trip = book.apply(fill("buy", 5, 40, fee=0.5, ts=2))
    assert trip is not None
    assert (trip.direction, trip.size, trip.entry_price, trip.exit_price) == ("short", 2, 50, 40)
    assert trip.fees == pytest.approx(0.2 + 0.5 * 2 / 5)
    assert trip.pnl == pytest.approx(20 - trip.fees)
    assert trip.return_pct == pytest.approx(trip.pnl / 100)
    assert book.position == 3 and book.entry_price == 40
    assert book.equity(41) == pytest.approx(100 - 200 - 0.7 + 3 * 41)


def test_rounding_dust_neither_keeps_a_trip_open_nor_opens_one() -> None:
    book = Portfolio("X", 0.0)
    for _ in range(3):
        book.apply(fill("buy", 0.1, 10))
    assert book.position == 0.30000000000000004
    assert book.apply(fill("sell", 0.3, 10)) is not None
    assert book.position == 0.0
    book.apply(fill("buy", 0.3, 10))
    assert book.apply(fill("sell", 0.30000000000000004, 10)) is not None
    assert book.position == 0.0 and len(book.trips) == 2


@pytest.mark.parametrize("cash", [0, -1.0, math.nan, math.inf, True, "10000", None])
def test_backtest_and_sweep_refuse_the_same_bad_starting_cash(cash: object) -> None:
    bars = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=3, freq="1min"),
            **dict.fromkeys(("open", "high", "low", "close", "volume"), 1.0),
        }
    )
    message = f"cash must be a positive amount, got {cash!r}"
    with pytest.raises(UsageError) as by_backtest:
        backtest("sma_cross", bars, interval="1m", cash=cash)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as by_sweep:
        sweep("sma_cross", {"fast": [2]}, bars, interval="1m", cash=cash)  # type: ignore[arg-type]
    assert str(by_backtest.value) == str(by_sweep.value) == message
