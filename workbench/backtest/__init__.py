"""Backtests: a strategy run on recorded or imported bars by the event engine."""

from workbench.backtest.result import BacktestResult
from workbench.backtest.run import backtest

__all__ = ["BacktestResult", "backtest"]
