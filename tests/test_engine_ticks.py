"""The trade/book engine: hand-computed fills, fees and accounts from recorded books and
prints, latency, the queue rule, order types, timers, marks and its errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from workbench.backtest import BacktestResult, backtest, backtest_ticks
from workbench.backtest.result import build_result
from workbench.clock import EventClock
from workbench.core.bookfills import BookFills
from workbench.engine import Context
from workbench.engine.ticks import TickEngine
from workbench.errors import StrategyError, UsageError
from workbench.events import BookChange, Fill, Level, Side, Trade
from workbench.feeds.recorder import Recorder
from workbench.replay import replay
from workbench.sim.synth_command import synthesize
from workbench.store import Store
from workbench.strategy import Strategy

T0 = 1_700_000_000_000_000  # on the 1 s grid: 2023-11-14T22:13:20
MS = 1_000
ASKS = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]
Event = Trade | BookChange


def trade(side: Side, price: float, size: float, t: int) -> Trade:
    return Trade("sim", "BTC-USD", t, t, price, size, side, f"t{t}")


def book(
    t: int, bids: Sequence[Level] = (), asks: Sequence[Level] = (), reset: bool = False
) -> Event:
    return BookChange("sim", "BTC-USD", t, t, None, reset, list(bids), list(asks))


def snapshot(t: int, bids: Sequence[Level], asks: Sequence[Level]) -> Event:
    return book(t, bids, asks, reset=True)


class Scripted(Strategy):
    """Runs ``script[i](ctx)`` on the i-th print (and ``on_book[i]`` on the i-th book change);
    keeps what it heard."""

    def __init__(
        self,
        script: dict[int, Callable[[Context], Any]] | None = None,
        on_book: dict[int, Callable[[Context], Any]] | None = None,
    ) -> None:
        super().__init__()
        self.script = script or {}
        self.book_script = on_book or {}
        self.heard: list[tuple[str, int]] = []
        self.fills: list[Fill] = []
        self.trades = 0
        self.changes = 0

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        self.heard.append(("trade", ctx.now))
        if self.trades in self.script:
            self.script[self.trades](ctx)
        self.trades += 1

    def on_book(self, ctx: Context, change: BookChange) -> None:
        self.heard.append(("book", ctx.now))
        if self.changes in self.book_script:
            self.book_script[self.changes](ctx)
        self.changes += 1

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.heard.append(("fill", ctx.now))
        self.fills.append(fill)


def run(
    strategy: Strategy, events: Iterable[Event], *, cash: float = 10_000.0, **terms: Any
) -> BacktestResult:
    fills = BookFills(**terms)
    engine = TickEngine(strategy, events, fills, symbol="BTC-USD", cash=cash)
    return build_result(
        engine.run(),
        strategy=strategy.name,
        params={},
        interval="1s",
        interval_seconds=1.0,
        fills_model=fills,
    )


def record(path: Path, events: Iterable[Event]) -> Path:
    """A real recording of ``events``, written as a feed writes them."""
    with Store.open(path) as store:
        recorder = Recorder("sim", store.writer, EventClock(0))
        for event in events:
            if isinstance(event, Trade):
                recorder.trade(event)
            else:
                recorder.book_change(event)
        recorder.flush()
    return path


def fill_rows(result: BacktestResult) -> list[tuple[Any, ...]]:
    f = result.fills
    return list(
        zip(f.ts.astype("int64"), f.side, f.price, f["size"], f.fee, f.liquidity, strict=True)
    )


def order_row(result: BacktestResult, i: int = 0) -> tuple[Any, ...]:
    o = result.orders.iloc[i]
    return (o.status, o.reason, o.filled, o.average_price)


# -- the acceptance cases, through a recording file and replay --------------------------------


def test_a_market_buy_walks_the_recorded_asks_to_the_exact_average_with_the_fee(
    tmp_path: Path,
) -> None:
    """3.5 against 100×1, 101×2, 102×5: 1@100 + 2@101 + 0.5@102 = 353, average 353 / 3.5 =
    100.857142857…, 10 bps taker = 0.353. Cash 10,000 − 353 − 0.353 = 9,646.647; marked at
    the last print (99) a second later: 9,646.647 + 3.5 × 99 = 9,993.147."""
    path = record(
        tmp_path / "rec.duckdb",
        [snapshot(T0, [(99.0, 4.0)], ASKS), trade("sell", 99.0, 0.5, T0 + 10 * MS)],
    )
    strategy = Scripted(on_book={0: lambda ctx: ctx.buy(3.5)})
    result = backtest_ticks(strategy, path, symbol="BTC-USD", fills=BookFills(taker_fee_bps=10))
    [(ts, side, price, size, fee, liquidity)] = fill_rows(result)
    assert (ts, side, size, liquidity) == (T0, "buy", 3.5, "taker")
    assert price == pytest.approx(353 / 3.5, rel=1e-12)
    assert fee == pytest.approx(0.353, rel=1e-12)
    assert order_row(result)[:3] == ("filled", "", 3.5)
    equity = result.equity
    assert list(equity.ts.astype("int64")) == [T0, T0 + 1_000_000]
    assert list(equity.position) == [0.0, 3.5]
    assert equity.cash.iloc[-1] == pytest.approx(9_646.647, rel=1e-12)
    assert list(equity.equity) == pytest.approx([10_000.0, 9_993.147], rel=1e-12)
    assert result.metrics["total_return"] == pytest.approx(-0.0006853, rel=1e-9)


def latency_events() -> list[Event]:
    """The asks 100×1, 101×2, 102×5 at T0; at +20 ms 100.5×3 replaces 100×1; at +60 ms the
    100.5 level goes."""
    return [
        snapshot(T0, [(99.0, 4.0)], ASKS),
        book(T0 + 20 * MS, asks=[(100.0, 0.0), (100.5, 3.0)]),
        book(T0 + 60 * MS, asks=[(100.5, 0.0)]),
        trade("sell", 99.0, 0.1, T0 + 100 * MS),
    ]


@pytest.mark.parametrize(
    ("latency_ms", "notional"),
    [
        (0, 353.0),  # the T0 book: 100 + 202 + 51
        (50, 352.0),  # the +20 ms book: 3 × 100.5 + 0.5 × 101 = 301.5 + 50.5
        (60, 355.0),  # due at +60 ms, after the change stamped then: 2 × 101 + 1.5 × 102
    ],
)
def test_with_latency_the_fill_uses_the_book_as_it_stood_that_much_later(
    tmp_path: Path, latency_ms: float, notional: float
) -> None:
    path = record(tmp_path / "rec.duckdb", latency_events())
    result = backtest_ticks(
        Scripted(on_book={0: lambda ctx: ctx.buy(3.5)}),
        path,
        symbol="BTC-USD",
        fills=BookFills(taker_fee_bps=10, latency_ms=latency_ms),
    )
    [(ts, _, price, size, fee, _)] = fill_rows(result)
    assert (ts, size) == (T0 + latency_ms * MS, 3.5)
    assert price == pytest.approx(notional / 3.5, rel=1e-12)
    assert fee == pytest.approx(notional / 1_000, rel=1e-12)


def test_a_resting_limit_fills_partly_from_a_print_through_it_and_not_from_touches(
    tmp_path: Path,
) -> None:
    """Buy 5 @ 100 joins behind 3. Sell prints of 2 and 1 @ 100 only touch: they use up the
    queue ahead and fill nothing. A buy print lifts the asks: not ours. A sell print of 2 @
    99.5 trades through: 2 @ 100 as maker, 2 bps of 200 = 0.04; 3 still rest. Cash
    10,000 − 200.04 = 9,799.96, marked at 99.5: 9,998.96."""
    events = [
        snapshot(T0, [(100.0, 3.0), (99.0, 4.0)], [(101.0, 2.0)]),
        trade("sell", 100.0, 2.0, T0 + 1 * MS),
        trade("sell", 100.0, 1.0, T0 + 2 * MS),
        trade("buy", 101.0, 3.0, T0 + 3 * MS),
        trade("sell", 99.5, 2.0, T0 + 4 * MS),
    ]
    path = record(tmp_path / "rec.duckdb", events)
    strategy = Scripted(on_book={0: lambda ctx: ctx.buy(5, type="limit", price=100.0)})
    result = backtest_ticks(strategy, path, symbol="BTC-USD", fills=BookFills(maker_fee_bps=2))
    assert fill_rows(result) == [(T0 + 4 * MS, "buy", 100.0, 2.0, pytest.approx(0.04), "maker")]
    assert order_row(result) == ("open", "", 2.0, 100.0)
    assert [kind for kind, _ in strategy.heard] == [
        "book",
        "trade",
        "trade",
        "trade",
        "fill",
        "trade",
    ]
    assert result.equity.cash.iloc[-1] == pytest.approx(9_799.96, rel=1e-12)
    assert result.equity.equity.iloc[-1] == pytest.approx(9_998.96, rel=1e-12)


# -- orders -----------------------------------------------------------------------------------


def test_a_market_order_larger_than_the_book_fills_what_there_is_and_cancels_the_rest() -> None:
    result = run(Scripted(on_book={0: lambda ctx: ctx.buy(10)}), [snapshot(T0, [], ASKS)])
    [(_, _, price, size, _, _)] = fill_rows(result)
    assert (size, price) == (8.0, pytest.approx(812 / 8))
    assert order_row(result) == ("cancelled", "the book held only 8 of 10", 8.0, price)


def test_ioc_takes_what_is_marketable_and_post_only_that_would_take_is_rejected() -> None:
    """IOC buy 5 @ 101: 1@100 + 2@101 = 302 for 3, the rest cancelled. Post-only @ 100 would
    take the 100 ask: rejected. Post-only @ 99.5 rests behind nothing."""
    script = {
        0: lambda ctx: (
            ctx.buy(5, type="limit", price=101.0, tif="ioc"),
            ctx.buy(1, type="limit", price=100.0, tif="post_only"),
            ctx.buy(1, type="limit", price=99.5, tif="post_only"),
        )
    }
    result = run(Scripted(on_book=script), [snapshot(T0, [(99.0, 4.0)], ASKS)])
    assert order_row(result, 0) == (
        "cancelled",
        "IOC: the rest was not marketable on arrival",
        3.0,
        pytest.approx(302 / 3),
    )
    assert order_row(result, 1)[:2] == ("rejected", "post-only order would take liquidity")
    assert order_row(result, 2)[:3] == ("open", "", 0.0)


def test_tick_and_lot_rounding_and_the_minimum_size() -> None:
    """Lot 0.5, tick 0.5: buy 1.7 walks 1.5 (1@100 + 0.5@101 = 150.5); a buy limit of 0.4 is
    below the lot; a limit price of 99.7 goes down to 99.5, the book's own level key."""
    script = {
        0: lambda ctx: (
            ctx.buy(1.7),
            ctx.buy(0.4, type="limit", price=99.0),
            ctx.buy(1, type="limit", price=99.7),
        )
    }
    result = run(Scripted(on_book=script), [snapshot(T0, [(99.5, 2.0)], ASKS)], lot=0.5, tick=0.5)
    assert fill_rows(result)[0][2:4] == (pytest.approx(150.5 / 1.5), 1.5)
    assert order_row(result, 1)[:2] == ("rejected", "size below the instrument's minimum or lot")
    assert result.orders.price.iloc[2] == 99.5


def test_target_orders_are_sized_when_they_reach_the_book_and_can_go_short() -> None:
    """target 0.5 at the 100 ask: 0.5 × 10,000 / 100 = 50. target -0.5 at the 125 bid:
    equity 5,000 + 50 × 125 = 11,250, so sell 5,625 + 6,250 = 11,875 / 125 = 95, short 45.
    close() buys 45 back at the 120 ask. Trips: long +1,250, short 45 × 5 = +225; cash
    10,000 + 1,475 = 11,475."""
    events = [
        snapshot(T0, [(99.0, 1e3)], [(100.0, 1e3)]),
        trade("buy", 100.0, 1.0, T0 + 1 * MS),
        snapshot(T0 + 2 * MS, [(125.0, 1e3)], [(126.0, 1e3)]),
        trade("sell", 125.0, 1.0, T0 + 3 * MS),
        snapshot(T0 + 4 * MS, [(119.0, 1e3)], [(120.0, 1e3)]),
        trade("buy", 120.0, 1.0, T0 + 5 * MS),  # the close() is due now: it still executes
    ]
    script = {0: lambda ctx: ctx.target(0.5), 1: lambda ctx: ctx.target(-0.5), 2: Context.close}
    result = run(Scripted(script), events)
    assert [(r[1], r[2], r[3]) for r in fill_rows(result)] == [
        ("buy", 100.0, 50.0),
        ("sell", 125.0, pytest.approx(95.0, rel=1e-12)),
        ("buy", 120.0, pytest.approx(45.0, rel=1e-12)),
    ]
    trades = result.trades
    assert list(trades.direction) == ["long", "short"]
    assert list(trades.pnl) == pytest.approx([1_250.0, 225.0], rel=1e-9)
    assert result.equity.cash.iloc[-1] == pytest.approx(11_475.0, rel=1e-12)
    assert result.equity.position.iloc[-1] == 0.0


def test_a_short_sale_from_flat_is_marked_at_the_last_print() -> None:
    """Sell 2 into the 99 bid: cash 10,198; at a last print of 101, equity 10,198 − 202."""
    events = [snapshot(T0, [(99.0, 5.0)], ASKS), trade("buy", 101.0, 1.0, T0 + 5 * MS)]
    result = run(Scripted(on_book={0: lambda ctx: ctx.sell(2)}), events)
    assert list(result.equity.position) == [0.0, -2.0]
    assert result.equity.equity.iloc[-1] == pytest.approx(9_996.0, rel=1e-12)


def test_a_stop_triggers_on_a_print_through_its_price_and_walks_the_bids() -> None:
    """Sell stop 2 @ 98 (long 2 first): a print at 98.5 does not reach it; a print at 98
    does, and it sells into 97.5×1, 97×5: 97.5 + 97 = 194.5, as a taker."""
    events = [
        snapshot(T0, [(99.0, 5.0)], [(100.0, 5.0)]),
        trade("sell", 98.5, 1.0, T0 + 1 * MS),
        book(T0 + 2 * MS, bids=[(99.0, 0.0), (97.5, 1.0), (97.0, 5.0)]),
        trade("sell", 98.0, 1.0, T0 + 3 * MS),
    ]
    script = {0: lambda ctx: (ctx.buy(2), ctx.sell(2, type="stop", price=98.0))}
    result = run(Scripted(on_book=script), events, taker_fee_bps=10)
    rows = fill_rows(result)
    assert rows[1] == (T0 + 3 * MS, "sell", 97.25, 2.0, pytest.approx(0.1945), "taker")
    assert order_row(result, 1)[:3] == ("filled", "", 2.0)
    assert result.equity.position.iloc[-1] == 0.0


def test_a_cancel_travels_with_the_latency_and_a_fill_on_the_way_still_counts() -> None:
    """A buy limit 2 @ 100 rests at +10 ms (nothing ahead); the cancel decided at +20 ms
    lands at +30 ms. A print through it at +25 ms fills 1 first; the one at +35 ms is too
    late. Until the cancel lands the order is still working."""
    seen: list[int] = []
    script = {
        0: lambda ctx: (ctx.cancel(ctx.open_orders[0]), seen.append(len(ctx.open_orders))),
        1: lambda ctx: seen.append(len(ctx.open_orders)),
        2: lambda ctx: seen.append(len(ctx.open_orders)),
    }
    events = [
        snapshot(T0, [(99.0, 1.0)], [(101.0, 1.0)]),
        trade("buy", 101.0, 1.0, T0 + 20 * MS),
        trade("sell", 99.5, 1.0, T0 + 25 * MS),
        trade("sell", 99.5, 1.0, T0 + 35 * MS),
    ]
    strategy = Scripted(script, on_book={0: lambda ctx: ctx.buy(2, type="limit", price=100.0)})
    result = run(strategy, events, latency_ms=10)
    assert fill_rows(result) == [(T0 + 25 * MS, "buy", 100.0, 1.0, 0.0, "maker")]
    assert order_row(result) == ("cancelled", "cancelled by the strategy", 1.0, 100.0)
    assert result.orders.closed.iloc[0] == pd.Timestamp(T0 + 30 * MS, unit="us")
    assert seen == [1, 1, 0]


def test_orders_still_in_flight_or_resting_when_the_replay_ends_stay_open() -> None:
    events = [snapshot(T0, [(99.0, 1.0)], ASKS), trade("buy", 100.0, 1.0, T0 + 10 * MS)]
    script = {0: lambda ctx: ctx.buy(1)}  # due at +15 ms: after the last event
    strategy = Scripted(script, on_book={0: lambda ctx: ctx.buy(1, type="limit", price=99.0)})
    result = run(strategy, events, latency_ms=5)  # the limit rests from +5 ms
    assert list(result.orders.status) == ["open", "open"]
    assert result.fills.empty


# -- timers, callbacks, marks -----------------------------------------------------------------


class Timed(Scripted):
    """Sets timers at +250 ms and +100 ms (twice) on start; the first at +100 ms repeats every
    400 ms from its own time."""

    def on_start(self, ctx: Context) -> None:
        self.set = [ctx.timer(0.25), ctx.timer(0.1), ctx.timer(0.1)]
        self.repeated: set[int] = set()

    def on_timer(self, ctx: Context, ts: int) -> None:
        assert ts == ctx.now
        self.heard.append(("timer", ts))
        if ts - T0 in (100 * MS, 500 * MS) and ts not in self.repeated:
            self.repeated.add(ts)
            self.set.append(ctx.timer(0.4))


def test_timers_fire_in_time_order_before_the_event_that_passes_them() -> None:
    """Timers at +100 (two) and +250 ms, repeats at +500 and +900 ms; a print at +100 ms
    comes first (an event at a timer's time is applied before it), the +900 ms one comes
    after the last event, at +800 ms, and never fires."""
    events = [
        snapshot(T0, [(99.0, 1.0)], ASKS),
        trade("buy", 100.0, 1.0, T0 + 100 * MS),
        trade("buy", 100.0, 1.0, T0 + 300 * MS),
        trade("buy", 100.0, 1.0, T0 + 800 * MS),
    ]
    strategy = Timed()
    run(strategy, events)
    assert [t - T0 for t in strategy.set] == [250 * MS, 100 * MS, 100 * MS, 500 * MS, 900 * MS]
    assert strategy.heard == [
        ("book", T0),
        ("trade", T0 + 100 * MS),
        ("timer", T0 + 100 * MS),
        ("timer", T0 + 100 * MS),
        ("timer", T0 + 250 * MS),
        ("trade", T0 + 300 * MS),
        ("timer", T0 + 500 * MS),
        ("trade", T0 + 800 * MS),
    ]


def test_the_account_is_marked_on_the_grid_at_the_last_print() -> None:
    """Grid 1 s from T0 + 0.5 s: the first mark at T0 (cash), one per second with every
    event up to it applied, the last at the first grid point after the last event."""
    events = [
        snapshot(T0 + 500 * MS, [(99.0, 5.0)], ASKS),
        trade("sell", 99.0, 1.0, T0 + 1_000 * MS),  # at the T0 + 1 s mark: in it
        trade("sell", 98.0, 1.0, T0 + 2_500 * MS),
    ]
    result = run(Scripted(on_book={0: lambda ctx: ctx.buy(1)}), events)
    equity = result.equity
    assert list(equity.ts.astype("int64") - T0) == [0, 1_000_000, 2_000_000, 3_000_000]
    assert list(equity.close.fillna(-1)) == [-1.0, 99.0, 99.0, 98.0]
    assert list(equity.equity) == [10_000.0, 9_999.0, 9_999.0, 9_998.0]


def test_bar_only_context_methods_say_what_to_use_instead() -> None:
    with pytest.raises(StrategyError, match="StreamingSMA"):
        run(Scripted(on_book={0: lambda ctx: ctx.indicator("sma", 5)}), [snapshot(T0, [], ASKS)])
    with pytest.raises(StrategyError, match="positive number of seconds"):
        run(Scripted(on_book={0: lambda ctx: ctx.timer(0)}), [snapshot(T0, [], ASKS)])
    bars = pd.DataFrame(
        {"ts": pd.date_range("2024-01-01", periods=3, freq="1min"), "open": 1.0, "high": 1.0,
         "low": 1.0, "close": 1.0, "volume": 1.0}
    )  # fmt: skip

    class BarTimer(Strategy):
        def on_bar(self, ctx: Context, bar: Any) -> None:
            ctx.timer(1.0)

    class BarBook(Strategy):
        def on_bar(self, ctx: Context, bar: Any) -> None:
            assert ctx.book

    for strategy in (BarTimer, BarBook):
        with pytest.raises(StrategyError, match="trade/book backtest"):
            backtest(strategy, bars, interval="1m")


def test_the_book_a_strategy_sees_is_the_book_after_the_event() -> None:
    tops: list[Any] = []
    script = {i: lambda ctx: tops.append((ctx.book.best_bid, ctx.book.best_ask)) for i in (0, 1)}
    events = [
        snapshot(T0, [(99.0, 4.0)], ASKS),
        book(T0 + 1, bids=[(99.5, 1.0)], asks=[(100.0, 0.0)]),
    ]
    run(Scripted(on_book=script), events)
    assert tops == [((99.0, 4.0), (100.0, 1.0)), ((99.5, 1.0), (101.0, 2.0))]


def test_an_exception_in_a_callback_is_a_strategy_error_naming_callback_event_and_time() -> None:
    class Boom(Strategy):
        def on_trade(self, ctx: Context, trade: Trade) -> None:
            raise ZeroDivisionError("no edge")

    with pytest.raises(StrategyError) as caught:
        run(Boom(), [snapshot(T0, [], ASKS), trade("buy", 100.0, 1.0, T0 + 1 * MS)])
    message = str(caught.value)
    assert message.startswith(
        "strategy Boom raised ZeroDivisionError: no edge in on_trade on Trade("
    )
    assert message.endswith("at 2023-11-14T22:13:20.001000")
    assert isinstance(caught.value.__cause__, ZeroDivisionError)

    class LateBoom(Strategy):
        def on_start(self, ctx: Context) -> None:
            ctx.timer(0.5)

        def on_timer(self, ctx: Context, ts: int) -> None:
            raise KeyError("x")

    with pytest.raises(
        StrategyError, match=r"KeyError: 'x' in on_timer at 2023-11-14T22:13:20.500000"
    ):
        run(LateBoom(), [snapshot(T0, [], ASKS), trade("buy", 100.0, 1.0, T0 + 900 * MS)])


def test_a_run_that_raises_closes_its_recording(tmp_path: Path) -> None:
    path = record(tmp_path / "rec.duckdb", [snapshot(T0, [], ASKS)])
    with pytest.raises(StrategyError, match="in on_book"):
        backtest_ticks(Scripted(on_book={0: lambda ctx: 1 / 0}), path, symbol="BTC-USD")
    Store.open(path).close()  # read-write again: the replay let the file go


def test_events_of_another_symbol_or_none_at_all_are_usage_errors() -> None:
    other = Trade("sim", "ETH-USD", T0, T0, 1.0, 1.0, "buy", "x")
    with pytest.raises(UsageError, match="BTC-USD's Trade and BookChange"):
        run(Scripted(), [snapshot(T0, [], ASKS), other])
    with pytest.raises(UsageError, match="no trades or book changes"):
        run(Scripted(), [])


def test_time_never_runs_back_an_event_stamped_earlier_is_taken_at_the_clock() -> None:
    strategy = Scripted()
    run(strategy, [snapshot(T0, [], ASKS), trade("buy", 100.0, 1.0, T0 - 5)])
    assert strategy.heard == [("book", T0), ("trade", T0)]


# -- a real recording, end to end -------------------------------------------------------------


class MeanReverter(Strategy):
    """Resting limits around a running mean of the prints, a market exit when far off."""

    def on_start(self, ctx: Context) -> None:
        self.prices: list[float] = []

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        self.prices.append(trade.price)
        if len(self.prices) % 25:
            return
        mean = sum(self.prices[-100:]) / len(self.prices[-100:])
        ctx.cancel_all()
        if abs(ctx.position) > 0.05:
            ctx.close()
        else:
            ctx.buy(0.02, type="limit", price=mean * 0.9995)
            ctx.sell(0.02, type="limit", price=mean * 1.0005)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ticks") / "synth.duckdb"
    synthesize(path, ["BTC-USD", "ETH-USD"], 0.05, trades_per_day=200_000)
    return path


def test_the_same_recording_gives_identical_fills_and_the_book_replay_keeps(
    synthetic: Path,
) -> None:
    fills = BookFills(taker_fee_bps=5, maker_fee_bps=1, latency_ms=25, tick=0.5, lot=0.001)
    first = backtest_ticks(MeanReverter, synthetic, symbol="BTC-USD", fills=fills)
    again = backtest_ticks(MeanReverter, synthetic, symbol="BTC-USD", fills=fills)
    assert len(first.fills) > 20 and set(first.fills.liquidity) == {"maker", "taker"}
    pd.testing.assert_frame_equal(first.fills, again.fills)
    pd.testing.assert_frame_equal(first.orders, again.orders)
    pd.testing.assert_frame_equal(first.equity, again.equity)
    assert math.isfinite(first.metrics["sharpe"])

    events = [a.event for a in replay(synthetic, symbols=["BTC-USD"], kinds=["trade", "book"])]
    engine = TickEngine(Scripted(), events, fills, symbol="BTC-USD", cash=1.0)
    engine.run()
    replayed = replay(synthetic, symbols=["BTC-USD"], kinds=["book"], books=True)
    for _ in replayed:
        pass
    truth = replayed.books[("synth", "BTC-USD")]
    assert (engine.book.bids(), engine.book.asks()) == (truth.bids(), truth.asks())


def test_backtest_ticks_checks_its_symbol_and_exchange(synthetic: Path) -> None:
    with pytest.raises(UsageError, match="no trades or book changes for SOL-USD"):
        backtest_ticks(Scripted, synthetic, symbol="SOL-USD")
    with pytest.raises(UsageError, match="on kraken"):
        backtest_ticks(Scripted, synthetic, symbol="BTC-USD", exchange="kraken")
    with pytest.raises(UsageError, match="cash"):
        backtest_ticks(Scripted, synthetic, symbol="BTC-USD", cash=0)
    result = backtest_ticks(
        Scripted, synthetic, symbol="ETH-USD", exchange="synth", mark_interval="1m"
    )
    assert result.interval == "1m" and result.fills.empty and not result.look_ahead_prone
    assert (result.equity.ts.diff().dropna() == pd.Timedelta(minutes=1)).all()


def test_the_readme_trade_book_example_runs(synthetic: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("from workbench import Param, Strategy\nfrom workbench.backtest.ticks")
    code = readme[start : readme.index("```", start)].replace('"data/synth.duckdb"', "DB")
    namespace: dict = {"DB": synthetic}
    exec(compile(code, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert len(result.fills) > 0 and set(result.fills["liquidity"]) <= {"maker", "taker"}
    assert (result.orders["status"] == "cancelled").any()  # the timer's cancel_all
