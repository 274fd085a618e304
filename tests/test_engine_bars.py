"""The bar engine: hand-computed fills, fees, positions, PnL and equity, and its rules."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from workbench.backtest import backtest
from workbench.core.fills import BarFills
from workbench.engine import Context
from workbench.engine.bars import FEED_BLOCK
from workbench.errors import StrategyError, UsageError
from workbench.events import Bar
from workbench.strategy import Strategy

# i:     0      1      2      3      4      5     6     7     8     9
OPEN = [100.0, 100.0, 101.0, 102.0, 103.0, 101.0, 99.0, 98.0, 97.0, 98.5]
HIGH = [101.0, 102.0, 103.0, 104.0, 103.5, 102.0, 100.0, 99.0, 99.0, 100.0]
LOW = [99.0, 99.5, 100.0, 101.0, 100.5, 98.0, 97.0, 96.5, 96.0, 98.0]
CLOSE = [100.0, 101.0, 102.0, 103.0, 101.0, 99.0, 98.0, 97.0, 98.5, 99.5]


def ten_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=10, freq="1min"),
            "open": OPEN,
            "high": HIGH,
            "low": LOW,
            "close": CLOSE,
            "volume": 1.0,
            "symbol": "BTC-USD",
        }
    )


class Scripted(Strategy):
    """Runs ``script[i](ctx)`` on bar i: orders written out by the test."""

    def __init__(self, script: dict[int, Any]) -> None:
        super().__init__()
        self.script = script
        self.seen: list[int] = []
        self.fills: list[Any] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        i = len(self.seen)
        self.seen.append(bar.ts)
        if i in self.script:
            self.script[i](ctx)

    def on_fill(self, ctx: Context, fill: Any) -> None:
        self.fills.append(fill)


def run(script: dict[int, Any], **fills: Any) -> Any:
    return backtest(Scripted(script), ten_bars(), interval="1m", fills=BarFills(**fills))


def test_ten_bars_of_scripted_orders_give_the_hand_computed_account() -> None:
    """Taker 10 bps, maker 2 bps, from 10,000:
    bar 1 buy 10 → bar 2 open 101: fee 1.01, cash 8,988.99;
    bar 3 sell limit 3 @ 103.5 → bar 4 only touches 103.5: no fill; cancelled on bar 8;
    bar 4 sell stop 10 @ 100 → bar 5 (open 101, low 98) fills at the stop 100: fee 1.00,
    cash 9,987.99, trip −10 − 2.01 = −12.01;
    bar 5 buy limit 5 @ 97 → bar 6 touches 97: no; bar 7 trades through: 97 as maker, fee
    0.097, cash 9,502.893; bar 8 close → bar 9 open 98.5: fee 0.4925, cash 9,994.9005,
    trip 7.5 − 0.5895 = 6.9105."""
    held: dict[str, Any] = {}
    script = {
        1: lambda ctx: ctx.buy(10),
        3: lambda ctx: held.update(limit=ctx.sell(3, type="limit", price=103.5)),
        4: lambda ctx: ctx.sell(10, type="stop", price=100.0),
        5: lambda ctx: ctx.buy(5, type="limit", price=97.0),
        8: lambda ctx: (ctx.cancel(held["limit"]), ctx.close()),
    }
    result = run(script, taker_fee_bps=10, maker_fee_bps=2)
    fills = result.fills
    assert fills["price"].tolist() == [101.0, 100.0, 97.0, 98.5]
    assert fills["size"].tolist() == [10.0, 10.0, 5.0, 5.0]
    assert fills["fee"].tolist() == pytest.approx([1.01, 1.0, 0.097, 0.4925])
    assert fills["liquidity"].tolist() == ["taker", "taker", "maker", "taker"]
    assert fills["ts"].tolist() == list(
        pd.date_range("2024-01-01 00:02", periods=8, freq="1min")[[0, 3, 5, 7]]
    )
    assert result.equity["position"].tolist() == [0, 0, 10, 10, 10, 0, 0, 5, 5, 0]
    assert result.equity["equity"].tolist() == pytest.approx(
        [10000, 10000, 10008.99, 10018.99, 9998.99, 9987.99, 9987.99, 9987.893, 9995.393, 9994.9005]
    )
    assert result.equity["cash"].iloc[-1] == pytest.approx(9994.9005)
    trades = result.trades
    assert trades["direction"].tolist() == ["long", "long"]
    assert trades["entry_price"].tolist() == [101.0, 97.0]
    assert trades["exit_price"].tolist() == [100.0, 98.5]
    assert trades["fees"].tolist() == pytest.approx([2.01, 0.5895])
    assert trades["pnl"].tolist() == pytest.approx([-12.01, 6.9105])
    orders = result.orders.set_index("client_order_id")
    assert orders["status"].tolist() == ["filled", "cancelled", "filled", "filled", "filled"]
    assert orders.loc["Scripted-2", "reason"] == "cancelled by the strategy"
    assert result.metrics["fees_paid"] == pytest.approx(2.5995)
    assert result.metrics["trades"] == 2.0
    assert result.metrics["total_return"] == pytest.approx(9994.9005 / 10000 - 1)


def test_an_order_never_fills_at_the_price_it_was_decided_on_unless_asked() -> None:
    script = {2: lambda ctx: ctx.buy(1)}
    honest = run(script)
    assert honest.fills["price"].tolist() == [OPEN[3]]
    assert not honest.look_ahead_prone
    eager = run(script, fill_at="close", slippage_bps=10)
    assert eager.fills["price"].tolist() == [pytest.approx(CLOSE[2] * 1.001)]
    assert eager.look_ahead_prone
    assert "Look-ahead-prone" in eager._repr_html_()


def test_slippage_moves_market_fills_against_the_trader() -> None:
    result = run({1: lambda ctx: ctx.buy(1), 2: lambda ctx: ctx.sell(1)}, slippage_bps=50)
    assert result.fills["price"].tolist() == pytest.approx([101.0 * 1.005, 102.0 * 0.995])


def test_limit_orders_marketable_at_the_open_fill_there_as_takers() -> None:
    """Placed on bar 3; bar 4 opens at 103, low 100.5. A buy limit at 103 is not below the
    open: it rests and fills at its price as a maker (the bar trades through it). A buy
    limit at 104 was marketable from the open: it fills at 103 as a taker, slippage on."""
    result = run(
        {
            3: lambda ctx: (
                ctx.buy(1, type="limit", price=103.0),
                ctx.buy(1, type="limit", price=104.0),
            )
        },
        slippage_bps=10,
    )
    assert result.fills["price"].tolist() == [103.0, pytest.approx(103.0 * 1.001)]
    assert result.fills["liquidity"].tolist() == ["maker", "taker"]


def test_touching_a_limit_fills_only_when_asked() -> None:
    script = {5: lambda ctx: ctx.buy(1, type="limit", price=97.0)}
    assert run(script, limit_touch=True).fills["ts"].tolist() == [pd.Timestamp("2024-01-01 00:06")]
    assert run(script).fills["ts"].tolist() == [pd.Timestamp("2024-01-01 00:07")]


def test_a_stop_gapped_through_fills_at_the_open() -> None:
    """A sell stop at 102 placed on bar 4: bar 5 opens at 101, below it: filled at 101."""
    result = run({0: lambda ctx: ctx.buy(1), 4: lambda ctx: ctx.sell(1, type="stop", price=102.0)})
    assert result.fills["price"].tolist() == [100.0, 101.0]


def test_ioc_and_post_only_limits() -> None:
    result = run(
        {
            1: lambda ctx: ctx.buy(1, type="limit", price=99.9, tif="ioc"),  # bar 2 opens 101
            2: lambda ctx: ctx.buy(1, type="limit", price=103.0, tif="post_only"),  # >= close
            3: lambda ctx: ctx.buy(1, type="limit", price=102.5, tif="post_only"),
        }
    )
    orders = result.orders
    assert orders["status"].tolist() == ["cancelled", "rejected", "filled"]
    assert orders["reason"].tolist()[:2] == [
        "IOC: not marketable at the open",
        "post-only order would take liquidity",
    ]
    assert result.fills["liquidity"].tolist() == ["maker"]


def test_a_target_spends_all_equity_including_the_fee() -> None:
    result = run({0: lambda ctx: ctx.target(1.0)}, taker_fee_bps=10)
    (size,) = result.fills["size"].tolist()
    assert size == pytest.approx(10_000 / (100.0 * 1.001))
    assert result.equity["cash"].iloc[1] == pytest.approx(0.0, abs=1e-9)


def test_short_then_flip_long_makes_two_round_trips() -> None:
    result = run(
        {0: lambda ctx: ctx.sell(2), 3: lambda ctx: ctx.buy(5), 7: lambda ctx: ctx.close()}
    )
    trades = result.trades
    assert trades["direction"].tolist() == ["short", "long"]
    assert trades["pnl"].tolist() == pytest.approx([2 * (100.0 - 103.0), 3 * (97.0 - 103.0)])
    assert result.equity["position"].tolist() == [0, -2, -2, -2, 3, 3, 3, 3, 0, 0]


def test_lot_tick_and_minimum_size() -> None:
    result = run(
        {
            1: lambda ctx: ctx.buy(1.2345),
            2: lambda ctx: ctx.buy(0.05),
            3: lambda ctx: ctx.buy(1, type="limit", price=101.37),
        },
        lot=0.01,
        min_size=0.1,
        tick=0.5,
    )
    assert result.fills["size"].tolist() == pytest.approx([1.23, 1.0])
    assert result.orders["status"].tolist() == ["filled", "rejected", "filled"]
    assert result.orders["price"].tolist()[2] == 101.0  # a buy limit rounds down to the tick


def test_warmup_holds_on_bar_back() -> None:
    class Late(Scripted):
        def warmup(self) -> int:
            return 7

    strategy = Late({})
    backtest(strategy, ten_bars(), interval="1m")
    assert len(strategy.seen) == 3


def test_series_hold_only_the_past() -> None:
    """On each bar a series holds the values up to that bar and nothing later, NaN-padded to
    ``keep``; one declared mid-run starts with the past it would have had."""
    seen = []

    class Reader(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.sma = ctx.indicator("sma", 2, keep=3)
            self.close = ctx.history("close", keep=4)

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if bar.close == CLOSE[5]:
                self.late = ctx.indicator("sma", 1, source="open", keep=2)
            seen.append((list(self.close), self.sma[-1], self.sma[-2]))

    strategy = Reader()
    backtest(strategy, ten_bars(), interval="1m")
    assert str(seen[0][0]) == "[nan, nan, nan, 100.0]"
    assert seen[1][1] == 100.5 and math.isnan(seen[1][2])  # no SMA(2) before two bars
    for i, (closes, now, before) in enumerate(seen):
        assert closes[-1] == CLOSE[i] and len(closes) == 4
        if i >= 2:
            assert (now, before) == (
                (CLOSE[i - 1] + CLOSE[i]) / 2,
                (CLOSE[i - 2] + CLOSE[i - 1]) / 2,
            )
    assert list(strategy.late) == OPEN[-2:]


def test_series_stay_exact_across_the_engine_s_feed_blocks() -> None:
    """Indicator values reach the strategy a block of bars at a time: series declared at the
    start, on a block's last bar and in a block's middle each show every bar's own value."""
    n = 3 * FEED_BLOCK + 17
    closes = [100.0 + (i % 97) * 0.25 for i in range(n)]
    bars = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="1min"),
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
        }
    )
    declared = {FEED_BLOCK - 1, FEED_BLOCK + 100}  # besides one at the start
    wrong: list[tuple[int, int, float]] = []

    class Reader(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.seen = 0
            self.series = [(0, ctx.history("close", keep=2))]

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            i = self.seen
            self.seen += 1
            if i in declared:
                self.series.append((i, ctx.history("close", keep=2)))
            for since, series in self.series:
                if series[-1] != closes[i] or (i > since and series[-2] != closes[i - 1]):
                    wrong.append((since, i, series[-1]))

    strategy = Reader()
    backtest(strategy, bars, interval="1m")
    assert strategy.seen == n and len(strategy.series) == 3
    assert wrong == []


def test_an_exception_in_the_strategy_names_it_the_callback_and_the_time() -> None:
    def boom(ctx: Context) -> None:
        raise ZeroDivisionError("division by zero")

    with pytest.raises(StrategyError) as caught:
        run({4: boom})
    message = str(caught.value)
    assert "Scripted raised ZeroDivisionError: division by zero in on_bar" in message
    assert "2024-01-01T00:05:00" in message  # bar 4 is seen at its close
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (lambda ctx: ctx.buy(-1), "positive number"),
        (lambda ctx: ctx.buy(1, type="limit"), "needs a positive price"),
        (lambda ctx: ctx.buy(1, price=10.0), "takes no price"),
        (lambda ctx: ctx.submit("long", 1), "side must be"),
        (lambda ctx: ctx.submit("buy", 1, target=1.0), "not both"),
        (lambda ctx: ctx.buy(1, type="stop", price=10.0, tif="ioc"), "rests until it triggers"),
    ],
)
def test_order_mistakes_fail_where_they_are_made(order: Any, message: str) -> None:
    with pytest.raises(StrategyError, match=message) as caught:
        run({0: order})
    assert isinstance(caught.value.__cause__, UsageError)


@pytest.mark.parametrize(
    ("bars", "message"),
    [
        (ten_bars().iloc[:0], "no bars"),
        (ten_bars().drop(columns=["high"]), "missing"),
        (ten_bars().iloc[::-1], "time order"),
        (ten_bars().assign(close=float("nan")), "NaN"),
        (ten_bars().assign(symbol=["A", "B"] * 5), "several symbols"),
    ],
)
def test_bad_bars_are_usage_errors(bars: pd.DataFrame, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        backtest("sma_cross", bars, interval="1m")


def test_a_flat_target_leaves_no_dust() -> None:
    """Target 0 sells exactly what is held: no 1e-16 short left to open a phantom trip."""
    result = run({0: lambda ctx: ctx.target(1.0), 3: lambda ctx: ctx.target(0.0)}, taker_fee_bps=10)
    assert result.equity["position"].iloc[-1] == 0.0
    assert len(result.trades) == 1


def test_an_account_wiped_out_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match=r"equity fell to .* at 2024-01-01T00:0.*wiped out"):
        run({0: lambda ctx: ctx.sell(5000), 3: lambda ctx: ctx.close()})


def test_bars_in_an_excluded_window_fill_nothing_and_take_no_orders() -> None:
    """A window from 00:03:30 to 00:05:00 halts bars 3 (it overlaps) and 4 (inside).
    Bar 2 buys 10 at market: bars 3 and 4 match nothing, so it fills at bar 5's open, 101.
    Bar 3's buy is rejected, and bar 4 still sees its bar (the strategy's state goes on)."""
    windows = pd.DataFrame(
        {"start": [pd.Timestamp("2024-01-01 00:03:30")], "end": [pd.Timestamp("2024-01-01 00:05")]}
    )
    strategy = Scripted({2: lambda ctx: ctx.buy(10), 3: lambda ctx: ctx.buy(1)})
    result = backtest(strategy, ten_bars(), interval="1m", exclude=windows)
    assert len(strategy.seen) == 10
    orders = result.orders
    assert orders["status"].tolist() == ["filled", "rejected"]
    assert (
        orders.loc[1, "reason"] == "placed on a bar excluded from trading (a data-quality window)"
    )
    fill = result.fills.iloc[0]
    assert (fill["price"], fill["ts"]) == (101.0, pd.Timestamp("2024-01-01 00:05"))
    assert result.equity["position"].tolist() == [0, 0, 0, 0, 0, 10, 10, 10, 10, 10]


def test_an_open_window_halts_every_bar_after_its_start() -> None:
    windows = pd.DataFrame({"start": [pd.Timestamp("2024-01-01 00:06")], "end": [pd.NaT]})
    result = backtest(
        Scripted({5: lambda ctx: ctx.buy(1)}), ten_bars(), interval="1m", exclude=windows
    )
    assert result.orders["status"].tolist() == ["open"] and result.fills.empty
    with pytest.raises(UsageError, match="windows to exclude need the columns start and end"):
        backtest("sma_cross", ten_bars(), interval="1m", exclude=pd.DataFrame({"from": [1]}))
