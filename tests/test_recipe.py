"""A result's recipe runs the same backtest or sweep again, with one thing changed."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers.bars import walk_bars
from workbench.backtest import backtest, sweep
from workbench.backtest.result import BacktestResult
from workbench.core.fills import BarFills
from workbench.engine import Context
from workbench.errors import UsageError
from workbench.events import Bar
from workbench.strategy import SmaCross, Strategy

FILLS = BarFills(taker_fee_bps=10.0, slippage_bps=2.0)


def same(a: BacktestResult, b: BacktestResult) -> None:
    for table in ("orders", "fills", "trades", "equity"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert a.metrics == pytest.approx(b.metrics, nan_ok=True)


@pytest.mark.parametrize("mode", ["event", "vectorized"])
def test_a_recipe_reruns_its_backtest_exactly(mode: str) -> None:
    bars = walk_bars(3_000, 2)
    result = backtest("sma_cross", bars, interval="1m", params={"fast": 5}, fills=FILLS, mode=mode)
    assert result.recipe is not None
    same(result.recipe.backtest(), result)
    assert result.recipe.params == {"fast": 5, "slow": 30, "short": False}


def test_a_changed_recipe_is_the_backtest_of_the_change() -> None:
    bars = walk_bars(3_000, 3)
    recipe = backtest("sma_cross", bars, interval="1m", fills=FILLS).recipe
    assert recipe is not None
    doubled = BarFills(taker_fee_bps=20.0, slippage_bps=4.0)
    same(
        recipe.but(fills=doubled, bars=bars.iloc[:1_000]).backtest(),
        backtest("sma_cross", bars.iloc[:1_000], interval="1m", fills=doubled),
    )


def test_an_instance_is_made_again_fresh_from_its_params() -> None:
    bars = walk_bars(2_000, 4)
    given = SmaCross(fast=4, slow=12)
    result = backtest(given, bars, interval="1m")
    assert result.recipe is not None and result.recipe.strategy is SmaCross
    made = result.recipe.make()
    assert made is not given and made.params == given.params
    same(result.recipe.backtest(), result)


def test_a_strategy_that_cannot_be_made_from_its_params_says_so() -> None:
    class Scripted(Strategy):
        def __init__(self, script: list[int]) -> None:
            super().__init__()
            self.script = script

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            pass

    result = backtest(Scripted([1]), walk_bars(50), interval="1m")
    assert result.recipe is not None
    with pytest.raises(UsageError, match="Scripted cannot be made again from its parameters"):
        result.recipe.backtest()


def test_a_sweep_from_a_recipe_holds_the_params_its_grid_leaves_out() -> None:
    bars = walk_bars(2_000, 5)
    recipe = backtest("sma_cross", bars, interval="1m", params={"short": True}).recipe
    assert recipe is not None
    grid = {"fast": [3, 5], "slow": [10, 20]}
    swept = recipe.sweep(grid, n_jobs=1, progress=False)
    direct = sweep(
        "sma_cross", {"short": [True], **grid}, bars, interval="1m", n_jobs=1, progress=False
    )
    pd.testing.assert_frame_equal(swept.table, direct.table)
    assert swept.table["short"].all()
    assert direct.recipe is not None and direct.recipe.bars is bars
