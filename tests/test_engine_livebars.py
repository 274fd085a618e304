"""Bars built from prints on the trade/book engine: what a bar strategy sees on a live feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workbench.backtest import backtest, backtest_ticks
from workbench.core.bookfills import BookFills
from workbench.core.indicators import sma
from workbench.engine import Context
from workbench.engine.bars import OrderRecord
from workbench.engine.livebars import LiveBars
from workbench.engine.ticks import ClockTick, TickEngine
from workbench.errors import UsageError
from workbench.events import Bar, BookChange, Fill, Order, Trade
from workbench.strategy import Strategy
from workbench.strategy.registry import make_strategy

from .helpers.bars import walk_bars
from .test_engine_ticks import record

T0 = 1_704_067_200_000_000  # 2024-01-01T00:00 UTC, on every grid
S = 1_000_000
MINUTE = 60 * S


def trade(t: int, price: float, size: float = 1.0) -> Trade:
    return Trade("sim", "BTC-USD", t, t, price, size, "buy", f"t{t}")


def around(t: int, price: float) -> BookChange:
    """A whole book one tick either side of ``price``, deep enough for any order here."""
    bids = [(round(price - 0.01, 2), 1e9)]
    asks = [(round(price + 0.01, 2), 1e9)]
    return BookChange("sim", "BTC-USD", t, t, None, True, bids, asks)


class Watcher(Strategy):
    """Keeps every bar it sees with the clock then, and what its series said."""

    name = "watcher"

    def __init__(self, warm: int = 0, window: int = 3) -> None:
        super().__init__()
        self.warm, self.window = warm, window
        self.seen: list[tuple[Bar, int]] = []
        self.sma: list[float] = []
        self.closes: list[float] = []
        self.heard: list[str] = []

    def warmup(self) -> int:
        return self.warm

    def on_start(self, ctx: Context) -> None:
        self._sma = ctx.indicator("sma", self.window)
        self._close = ctx.history("close")

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen.append((bar, ctx.now))
        self.sma.append(self._sma[-1])
        self.closes.append(self._close[-1])
        self.heard.append(f"bar {bar.end}")

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        self.heard.append(f"trade {trade.recv_ts}")


def engine(strategy: Strategy, events: list[Any], interval_us: int = MINUTE) -> TickEngine:
    return TickEngine(
        strategy, events, BookFills(), symbol="BTC-USD", cash=10_000.0, bar_interval_us=interval_us
    )


def test_prints_make_bars_of_their_receipt_interval_closed_when_the_clock_reaches_the_end() -> None:
    bars = LiveBars("BTC-USD", MINUTE)
    for t, price, size in ((T0 + S, 100.0, 1.0), (T0 + 20 * S, 102.0, 2.0),
                           (T0 + 30 * S, 98.5, 0.5), (T0 + MINUTE - 1, 99.0, 1.5)):  # fmt: skip
        bars.add("sim", t, price, size)
    assert bars.end == T0 + MINUTE
    bar = bars.close()
    assert bar == Bar("sim", "BTC-USD", T0, T0 + MINUTE, 100.0, 102.0, 98.5, 99.0, 5.0)
    assert bars.count == 1
    with pytest.raises(UsageError, match="positive number of µs"):
        LiveBars("BTC-USD", 0)


def test_a_print_at_a_bar_s_end_belongs_to_the_next_bar_which_closes_first() -> None:
    strategy = Watcher(warm=1)
    times = (0, 30 * S, MINUTE, 3 * MINUTE + 5 * S, 3 * MINUTE + 9 * S)
    events = [trade(T0 + t, 100.0 + k) for k, t in enumerate(times)]
    engine(strategy, events).run()
    # Bar 0 is the warm-up: closed (the series have it) but not shown to on_bar. Bar 1 holds
    # only the print at T0 + 1 min. Minutes 2 has no print and makes no bar; minute 3's bar
    # is still open when the run ends, so it never closes.
    assert strategy.heard == [
        f"trade {T0}",
        f"trade {T0 + 30 * S}",
        f"trade {T0 + MINUTE}",
        f"bar {T0 + 2 * MINUTE}",
        f"trade {T0 + 3 * MINUTE + 5 * S}",
        f"trade {T0 + 3 * MINUTE + 9 * S}",
    ]
    [(bar, now)] = strategy.seen
    assert (bar.ts, bar.end, bar.open, bar.close, bar.volume) == (
        T0 + MINUTE, T0 + 2 * MINUTE, 102.0, 102.0, 1.0)  # fmt: skip
    assert now == bar.end
    assert strategy.closes == [102.0]
    assert strategy.sma[0] != strategy.sma[0]  # NaN: two bars are not a 3-bar window


def test_the_strategy_s_indicators_equal_those_over_the_whole_column() -> None:
    bars = walk_bars(120, seed=3)
    strategy = Watcher(window=7)
    engine(strategy, list(prints_of(bars))).run()
    closes = bars["close"].to_numpy()
    # The last bar's close is never passed: no print comes after it.
    assert [b.close for b, _ in strategy.seen] == pytest.approx(closes[:-1].tolist(), abs=0)
    assert strategy.closes == closes[:-1].tolist()
    np.testing.assert_allclose(strategy.sma, sma(closes, 7)[:-1], rtol=1e-12)


def test_past_the_lookback_the_buffers_compact_and_the_series_stay_exact() -> None:
    bars = LiveBars("BTC-USD", S, lookback=4)
    mean = bars.indicator(lambda x, n: sma(x, n), (3,), "close", keep=100)
    history = bars.history("close", keep=100)
    closes = [float(100 + (i * 7) % 11) for i in range(25)]
    for i, price in enumerate(closes):
        bars.add("sim", T0 + i * S, price, 1.0)
        bars.close()
    assert list(history)[-25:] == closes
    np.testing.assert_allclose(list(mean)[-25:], sma(np.array(closes), 3), rtol=1e-12)


def prints_of(bars: pd.DataFrame) -> list[Trade | BookChange]:
    """Each one-minute bar as four prints — open, high, low, close at 0, 15, 30 and 45 s —
    each of a quarter of its volume, after a book around its price."""
    events: list[Trade | BookChange] = []
    starts = bars["ts"].to_numpy().astype("datetime64[us]").astype("int64")
    for start, row in zip(starts, bars.itertuples(), strict=True):
        for k, price in enumerate((row.open, row.high, row.low, row.close)):
            t = int(start) + 15 * k * S
            events += [around(t, price), trade(t, price, row.volume / 4)]
    return events


def bursty_bars(n: int, seed: int) -> pd.DataFrame:
    """One-minute bars whose volatility and volume burst every fifth 97-bar stretch."""
    rng = np.random.default_rng(seed)
    burst = (np.arange(n) // 97) % 5 == 4
    close = 100 * np.exp(np.cumsum(rng.normal(0, np.where(burst, 0.01, 0.001))))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": "BTC-USD",
            "ts": pd.date_range("2024-01-01", periods=n, freq="1min"),
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": np.where(burst, 8.0, 4.0),
        }
    )


BUILT_IN_PARAMS = {
    "sma_cross": {"fast": 5, "slow": 20, "short": True},
    "vol_breakout": {"window": 10, "lookback": 100, "volume_window": 10, "short": True},
}


@pytest.mark.parametrize("name", BUILT_IN_PARAMS)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_built_in_on_prints_decides_exactly_as_on_the_bars_they_make(
    name: str, seed: int
) -> None:
    bars = bursty_bars(1_000, seed)
    params = BUILT_IN_PARAMS[name]
    on_bars = backtest(name, bars, interval="1m", params=params)
    on_prints = engine(make_strategy(name, params), prints_of(bars)).run()
    # A closing order's size is the position, which the fill models make differently (the
    # next open against the book 15 s on): sizes are compared for presence only.
    fields = ("created", "side", "type", "size", "target", "price")
    expected = [
        (
            pd.Timestamp(t).value // 1000,
            side,
            kind,
            not pd.isna(size),
            *(None if pd.isna(v) else v for v in rest),
        )
        for t, side, kind, size, *rest in on_bars.orders[list(fields)].itertuples(index=False)
    ]
    decided = [
        (o.created_us, o.side, o.type, o.size is not None, o.target, o.price)
        for o in (record.order for record in on_prints.orders)
    ]
    assert len(expected) >= 8
    # The bar run also decides on the last bar, which the print run never closes.
    last_close = bars["ts"].iloc[-1].value // 1000 + MINUTE
    assert decided == [e for e in expected if e[0] < last_close]
    logged = [
        (pd.Timestamp(row.ts).value // 1000, row.message, row.fields)
        for row in on_bars.decisions.itertuples()
    ]
    assert on_prints.decisions == [line for line in logged if line[0] < last_close]


def test_a_bar_strategy_needs_a_bar_interval_and_a_tick_run_without_one_has_no_bars() -> None:
    with pytest.raises(UsageError, match="decides on bars"):
        TickEngine(Watcher(), [], BookFills(), symbol="BTC-USD", cash=1.0)


def test_backtest_ticks_builds_the_bars_a_bar_strategy_asks_for(tmp_path: Path) -> None:
    bars = bursty_bars(200, seed=4)
    events = prints_of(bars)
    db = record(tmp_path / "prints.duckdb", events)
    params = BUILT_IN_PARAMS["sma_cross"]
    result = backtest_ticks("sma_cross", db, symbol="BTC-USD", params=params, bar_interval="1m")
    direct = engine(make_strategy("sma_cross", params), events).run()
    assert len(direct.orders) >= 2
    assert result.orders["client_order_id"].tolist() == [
        r.order.client_order_id for r in direct.orders
    ]
    assert result.fills["price"].tolist() == [f.price for f in direct.fills]
    with pytest.raises(UsageError, match="decides on bars"):
        backtest_ticks("sma_cross", db, symbol="BTC-USD", params=params)


def test_a_clock_tick_closes_a_bar_on_a_quiet_market_at_its_end_time() -> None:
    strategy = Watcher()
    events = [trade(T0 + 5 * S, 100.0), ClockTick(T0 + 30 * S), ClockTick(T0 + MINUTE + 250_000)]
    engine(strategy, events).run()
    [(bar, now)] = strategy.seen
    assert (bar.end, now, bar.close) == (T0 + MINUTE, T0 + MINUTE, 100.0)


def test_ticks_that_keep_their_word_change_no_decision() -> None:
    bars = bursty_bars(300, seed=5)
    events = prints_of(bars)
    ticked: list[Trade | BookChange | ClockTick] = []
    for event in events:  # a tick 1 ms before each print: nothing is due that early
        ticked += [ClockTick(event.recv_ts - 1_000), event]
    params = BUILT_IN_PARAMS["sma_cross"]
    plain = engine(make_strategy("sma_cross", params), events).run()
    with_ticks = engine(make_strategy("sma_cross", params), ticked).run()
    assert [r.order for r in with_ticks.orders] == [r.order for r in plain.orders]
    assert with_ticks.fills == plain.fills


class Limit:
    """A supervisor that refuses orders above ``most`` and flattens once the price falls to
    ``floor``; it keeps everything it is told."""

    def __init__(self, run: TickEngine, most: float, floor: float) -> None:
        self.run, self.most, self.floor = run, most, floor
        self.admitted: list[str] = []
        self.told: list[tuple[str, str]] = []
        self.marks: list[tuple[int, float, float]] = []

    def admit(self, order: Order) -> str | None:
        if order.size is not None and order.size > self.most:
            return f"size {order.size} above {self.most}"
        self.admitted.append(order.client_order_id)
        return None

    def filled(self, fill: Fill, record: OrderRecord) -> None:
        self.told.append(("fill", fill.client_order_id))

    def closed(self, record: OrderRecord) -> None:
        self.told.append((record.status, record.order.client_order_id))

    def marked(self, time_us: int, price: float, position: float, cash: float) -> None:
        self.marks.append((time_us, price, position))
        if position and price <= self.floor:
            self.run.context.close()


class Buyer(Strategy):
    name = "buyer"

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        if trade.price == 100.0:
            ctx.buy(5.0)  # refused
            ctx.buy(1.0)


def test_a_supervisor_refuses_orders_sees_what_becomes_of_them_and_can_close_the_position() -> None:
    events: list[Trade | BookChange] = [around(T0, 100.0), trade(T0, 100.0)]
    for k, price in enumerate((99.0, 97.0, 96.0), start=1):
        events += [around(T0 + k * S + 1, price), trade(T0 + k * S + 1, price)]
    run = TickEngine(Buyer(), events, BookFills(), symbol="BTC-USD", cash=10_000.0)
    watch = run.supervisor = Limit(run, most=2.0, floor=97.0)
    result = run.run()
    status = {r.order.client_order_id: (r.status, r.reason) for r in result.orders}
    assert status == {
        "buyer-1": ("rejected", "size 5.0 above 2.0"),
        "buyer-2": ("filled", ""),
        "buyer-3": ("filled", ""),  # the supervisor's close, after the mark at 97
    }
    assert watch.admitted == ["buyer-2", "buyer-3"]
    assert watch.told == [
        ("rejected", "buyer-1"), ("fill", "buyer-2"), ("filled", "buyer-2"),
        ("fill", "buyer-3"), ("filled", "buyer-3"),
    ]  # fmt: skip
    assert [t - T0 for t, _, _ in watch.marks] == [S, 2 * S, 3 * S, 4 * S]  # after the opening
    assert result.fills[-1].side == "sell" and result.fills[-1].size == 1.0
    # Decided at the mark of T0 + 3 s, the close meets the book as it stood then (97 - 0.01).
    assert result.fills[-1].ts == T0 + 3 * S
    assert result.trips[0].exit_price == pytest.approx(96.99)
