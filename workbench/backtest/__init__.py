"""Backtests: a strategy run on recorded or imported bars, once or over a parameter grid, or on
a recording's trades and book."""

from workbench.backtest.result import BacktestResult
from workbench.backtest.run import backtest
from workbench.backtest.sweep import SweepResult, sweep
from workbench.backtest.ticks import backtest_ticks

__all__ = ["BacktestResult", "SweepResult", "backtest", "backtest_ticks", "sweep"]
