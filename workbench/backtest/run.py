"""``backtest()``: a strategy over a DataFrame of bars, on the event engine."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from workbench.backtest.recipe import Recipe
from workbench.backtest.result import BacktestResult, build_result
from workbench.core.fills import BarFills
from workbench.core.intervals import parse_interval
from workbench.core.portfolio import starting_cash
from workbench.engine.data import BarData
from workbench.engine.modes import simulate
from workbench.strategy.base import Strategy
from workbench.strategy.registry import make_strategy


def backtest(
    strategy: str | type[Strategy] | Strategy,
    bars: pd.DataFrame,
    *,
    interval: str,
    params: Mapping[str, object] | None = None,
    fills: BarFills | None = None,
    cash: float = 10_000.0,
    mode: str = "event",
    exclude: pd.DataFrame | None = None,
) -> BacktestResult:
    """Run ``strategy`` (a name, ``file.py:Class``, a class or an instance) with ``params``
    over ``bars`` — columns ``ts`` (the bucket start, naive UTC or tz-aware) and
    ``open``/``high``/``low``/``close``/``volume``, one symbol, oldest first — of length
    ``interval``, from ``cash``, filled by ``fills`` (default: no costs, next-open fills).
    ``mode="vectorized"`` runs the strategy's ``signals()`` instead of its callbacks: the
    same orders, fills and equity, many times faster (see :func:`~workbench.engine.simulate`).
    ``exclude``: windows (``start``, ``end``) to keep out of trading, e.g. a series'
    ``quality_events`` windows (:func:`~workbench.backtest.command.quality_windows_of`, what
    ``--exclude-quality`` uses): no order fills on a bar that overlaps one, and an order
    placed on such a bar is rejected."""
    chosen = make_strategy(strategy, params)
    every = parse_interval(interval)
    cash = starting_cash(cash)
    model = fills or BarFills()
    data = BarData.from_frame(bars, every.micros, exclude)
    result = build_result(
        simulate(chosen, data, model, cash=cash, mode=mode),
        strategy=chosen.name,
        params=dict(chosen.params),
        interval=every.name,
        interval_seconds=every.seconds,
        fills_model=model,
    )
    result.recipe = Recipe(
        type(chosen) if isinstance(strategy, Strategy) else strategy,  # made again, fresh
        params=dict(chosen.params),
        bars=bars,
        interval=every.name,
        fills=model,
        cash=cash,
        mode=mode,
        exclude=exclude,
    )
    return result
