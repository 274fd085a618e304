"""result.plot(): three charts on one time scale, decimated without losing the worst
drawdown, with a marker per shown trade at its entry and exit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers.bars import walk_bars
from workbench.backtest import backtest
from workbench.backtest.plot import MAX_MARKERS, buckets
from workbench.core.fills import BarFills
from workbench.errors import UsageError


def walk(n: int) -> pd.DataFrame:
    return walk_bars(n, 4)


def test_buckets_cover_the_run_and_end_on_its_last_bar() -> None:
    assert buckets(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert buckets(10, 4).tolist() == [1, 4, 6, 9]


def test_the_charts_show_the_run_decimated_with_its_worst_drawdown_and_its_trades() -> None:
    result = backtest(
        "sma_cross",
        walk(50_000),
        interval="1m",
        params={"short": True},
        fills=BarFills(taker_fee_bps=1),
    )
    box = result.plot(points=500)
    price, equity, drawdown = box.children
    line, long_entries, short_entries, exits = price.marks
    assert len(line.x) == len(equity.marks[0].y) == len(drawdown.marks[0].y) == 500
    assert line.scales["x"] is equity.marks[0].scales["x"] is drawdown.marks[0].scales["x"]
    assert (
        line.x[-1] == result.equity["ts"].iloc[-1] and line.y[-1] == result.equity["close"].iloc[-1]
    )
    assert drawdown.marks[0].y.min() == result.equity["drawdown"].min()
    trades = result.trades
    assert len(trades) > MAX_MARKERS  # so only some are marked, and the title says so
    assert len(long_entries.x) + len(short_entries.x) == len(exits.x) == MAX_MARKERS
    assert f"{MAX_MARKERS} of {len(trades)} trades marked" in price.title
    shown = trades.iloc[buckets(len(trades), MAX_MARKERS)]
    longs = shown[shown["direction"] == "long"]
    assert np.array_equal(long_entries.x, longs["entry"].to_numpy())
    assert np.array_equal(long_entries.y, longs["entry_price"].to_numpy())
    assert np.array_equal(exits.y, shown["exit_price"].to_numpy())


def test_a_short_run_shows_every_bar_and_bad_points_are_refused() -> None:
    result = backtest("sma_cross", walk(300), interval="1m", params={"fast": 3, "slow": 8})
    price = result.plot().children[0]
    assert len(price.marks[0].x) == 300 and "marked" not in price.title
    with pytest.raises(UsageError, match="points must be an integer >= 2"):
        result.plot(points=1)
