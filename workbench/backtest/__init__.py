"""Backtests: a strategy run on recorded or imported bars, once or over a parameter grid."""

from workbench.backtest.result import BacktestResult
from workbench.backtest.run import backtest
from workbench.backtest.sweep import SweepResult, sweep

__all__ = ["BacktestResult", "SweepResult", "backtest", "sweep"]
