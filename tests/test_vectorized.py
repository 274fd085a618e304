"""The vectorized path: a strategy's signals() executed gives the event engine's result,
number for number, and its mistakes are clear errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.bars import walk_bars
from workbench.backtest import BacktestResult, backtest
from workbench.core.fills import BarFills
from workbench.engine import Context
from workbench.errors import StrategyError, UsageError
from workbench.events import Bar
from workbench.strategy import SmaCross, Strategy


def walk(n: int, seed: int) -> pd.DataFrame:
    return walk_bars(n, seed, gap=0.0005, wick=0.001, symbol="BTC-USD")


def assert_same(event: BacktestResult, vectorized: BacktestResult) -> None:
    """The same tables to the last bit, and the same metrics (NaN where NaN)."""
    for table in ("orders", "fills", "trades", "equity"):
        pd.testing.assert_frame_equal(
            getattr(event, table), getattr(vectorized, table), check_exact=True
        )
    for key, value in event.metrics.items():
        other = vectorized.metrics[key]
        assert value == other or (math.isnan(value) and math.isnan(other)), key


def both(strategy: Any, bars: pd.DataFrame, **kwargs: Any) -> tuple[BacktestResult, ...]:
    return tuple(
        backtest(strategy, bars, interval="1m", mode=mode, **kwargs)
        for mode in ("event", "vectorized")
    )


@pytest.mark.slow
def test_sma_cross_agrees_trade_for_trade_over_a_million_bars() -> None:
    bars = walk(1_000_000, seed=3)
    event, vectorized = both("sma_cross", bars, fills=BarFills(taker_fee_bps=1, slippage_bps=1))
    assert len(event.trades) > 10_000  # a real test of the bookkeeping, not a quiet market
    assert_same(event, vectorized)


class Rebalance(Strategy):
    """Targets that drift: fractions, repeats (a rebalance of a drifted position), flips,
    flat — decided by a rule on the closes, written once for each path."""

    name = "rebalance"

    def warmup(self) -> int:
        return 3

    @staticmethod
    def rule(close: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        targets = np.full(len(close), np.nan)
        momentum = close[3:] / close[:-3] - 1
        pick = np.select(
            [momentum > 0.004, momentum > 0.001, momentum < -0.004, momentum < -0.001],
            [1.5, 0.5, -1.0, 0.0],
            default=np.nan,
        )
        targets[3:] = pick
        return targets

    def signals(self, bars: pd.DataFrame) -> npt.NDArray[np.float64]:
        return self.rule(bars["close"].to_numpy())


class RebalanceEvent(Rebalance):
    """The same rule, decided bar by bar in on_bar from the closes seen so far."""

    name = "rebalance"

    def on_start(self, ctx: Context) -> None:
        self.closes = ctx.history(keep=4)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        target = self.rule(np.array(self.closes))[-1]
        if not math.isnan(target):
            ctx.target(float(target))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    taker=st.sampled_from([0.0, 2.5, 10.0]),
    slippage=st.sampled_from([0.0, 3.0]),
    fill_at=st.sampled_from(["next_open", "close"]),
    lot=st.sampled_from([0.0, 0.01, 1.0]),
    min_size=st.sampled_from([0.0, 5.0]),
    halts=st.lists(st.tuples(st.integers(0, 299), st.integers(1, 40)), max_size=4),
)
def test_drifting_targets_give_the_same_orders_fills_and_account_on_both_paths(
    seed: int,
    taker: float,
    slippage: float,
    fill_at: Any,
    lot: float,
    min_size: float,
    halts: list[tuple[int, int]],
) -> None:
    fills = BarFills(
        taker_fee_bps=taker, slippage_bps=slippage, fill_at=fill_at, lot=lot, min_size=min_size
    )
    bars = walk(300, seed)
    start = bars["ts"].iloc[0]
    minute = pd.Timedelta(minutes=1)
    exclude = pd.DataFrame(  # windows of whole bars, some running past the end
        {
            "start": [start + first * minute for first, _ in halts],
            "end": [start + (first + length) * minute for first, length in halts],
        }
    )
    event = backtest(RebalanceEvent(), bars, interval="1m", fills=fills, exclude=exclude)
    vectorized = backtest(
        Rebalance(), bars, interval="1m", fills=fills, mode="vectorized", exclude=exclude
    )
    assert_same(event, vectorized)


@pytest.mark.parametrize("short", [False, True])
def test_sma_cross_with_costs_lots_and_close_fills_agrees(short: bool) -> None:
    fills = BarFills(taker_fee_bps=5, slippage_bps=2, fill_at="close", lot=0.001, min_size=0.01)
    event, vectorized = both(SmaCross, walk(20_000, 11), params={"short": short}, fills=fills)
    assert len(event.trades) > 100
    assert set(event.orders["status"]) >= {"filled"}
    assert_same(event, vectorized)


def test_signals_decide_exactly_where_on_bar_does() -> None:
    bars = walk(5_000, 5)
    strategy = SmaCross(fast=3, slow=8)
    targets = strategy.signals(bars)
    result = backtest(strategy, bars, interval="1m")
    decided_at = pd.to_datetime(bars["ts"]).to_numpy()[~np.isnan(targets)] + np.timedelta64(1, "m")
    orders_at = result.orders["created"].to_numpy()
    # every order comes from a signal (some signals find the position already there)
    assert set(orders_at) <= set(decided_at) and len(orders_at) > 50
    assert np.isnan(targets[: strategy.slow]).all()


class NoSignals(Strategy):
    pass


class Broken(Strategy):
    def signals(self, bars: pd.DataFrame) -> Any:
        return self.answer(bars)

    def answer(self, bars: pd.DataFrame) -> Any:
        raise ZeroDivisionError("oops")


class Short(Broken):
    def answer(self, bars: pd.DataFrame) -> Any:
        return np.zeros(len(bars) - 1)


class Infinite(Broken):
    def answer(self, bars: pd.DataFrame) -> Any:
        return np.full(len(bars), np.inf)


@pytest.mark.parametrize(
    ("strategy", "error", "message"),
    [
        (NoSignals, UsageError, "NoSignals has no signals(), which mode='vectorized' runs"),
        (Broken, StrategyError, "strategy Broken raised ZeroDivisionError: oops in signals"),
        (Short, StrategyError, "strategy Short: signals() gave 9 values for 10 bars"),
        (Infinite, StrategyError, "strategy Infinite: signals() gave an infinite target"),
    ],
)
def test_signal_mistakes_are_clear_errors(strategy: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        backtest(strategy, walk(10, 0), interval="1m", mode="vectorized")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(UsageError, match="mode must be one of event, vectorized"):
        backtest("sma_cross", walk(50, 0), interval="1m", mode="fast")
