"""A live feed subscription driving the trade/book engine: bars close on the clock, even quiet."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.e2e import wait_for
from workbench.core.bookfills import BookFills
from workbench.engine import Context
from workbench.engine.ticks import TickEngine
from workbench.events import Bar, Trade
from workbench.feeds.feed import Feed
from workbench.runner.source import LiveSource
from workbench.sim import SimConfig, SimServer
from workbench.store import Store
from workbench.strategy import Strategy

SECOND = 1_000_000


class Bars(Strategy):
    name = "bars"

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[tuple[Bar, int]] = []
        self.trades: list[Trade] = []

    def on_start(self, ctx: Context) -> None:
        self.close = ctx.history("close")

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.bars.append((bar, ctx.now))
        assert self.close[-1] == bar.close

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        self.trades.append(trade)


def test_a_subscription_feeds_the_engine_and_the_clock_closes_the_last_bar(tmp_path: Path) -> None:
    strategy = Bars()
    config = SimConfig(port=0, seed=5, symbols=("BTC-USD",), rate=80, duration=2.5, grace=30.0)
    with Store.open(tmp_path / "live.duckdb") as store, SimServer(config) as sim:
        feed = Feed("sim", ["BTC-USD"], store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url)
        source = LiveSource(feed, "BTC-USD", tick_s=0.05, grace_s=0.1)
        engine = TickEngine(
            strategy, source, BookFills(), symbol="BTC-USD", cash=1_000.0, bar_interval_us=SECOND
        )
        runs = threading.Thread(target=engine.run, daemon=True)
        feed.start()
        runs.start()
        try:
            assert sim.halted.wait(20)
            assert wait_for(lambda: len(strategy.trades) > 20, 10)
            # The market is quiet now: only the clock can close the bar of the last print.
            assert wait_for(
                lambda: strategy.bars and strategy.bars[-1][0].end > strategy.trades[-1].recv_ts,
                10,
            )
        finally:
            source.stop()
            runs.join(10)
            feed.stop()
    assert not runs.is_alive()
    assert source.subscription.closed
    assert source.received >= len(strategy.trades) > 20 and source.ticks > 0
    times = [t.recv_ts for t in strategy.trades]
    ends = [bar.end for bar, _ in strategy.bars]
    assert all(now == bar.end and bar.end % SECOND == 0 for bar, now in strategy.bars)
    assert ends == sorted(set(ends))
    # Every print is in the bar of its receipt second, and each bar's close is its last print.
    for bar, _ in strategy.bars:
        inside = [t for t in strategy.trades if bar.ts <= t.recv_ts < bar.end]
        assert inside and bar.close == inside[-1].price
        assert bar.volume == sum(t.size for t in inside)
    assert len(strategy.bars) == len({t // SECOND for t in times})
