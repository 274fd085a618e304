"""``backtest()``: a strategy over a DataFrame of bars, on the event engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.result import BacktestResult, build_result
from workbench.core.fills import BarFills
from workbench.core.intervals import parse_interval
from workbench.engine.bars import BarEngine
from workbench.errors import UsageError
from workbench.events import Bar
from workbench.strategy.base import Strategy
from workbench.strategy.registry import make_strategy

BAR_FIELDS = ("open", "high", "low", "close", "volume")


def backtest(
    strategy: str | type[Strategy] | Strategy,
    bars: pd.DataFrame,
    *,
    interval: str,
    params: Mapping[str, object] | None = None,
    fills: BarFills | None = None,
    cash: float = 10_000.0,
) -> BacktestResult:
    """Run ``strategy`` (a name, ``file.py:Class``, a class or an instance) with ``params``
    over ``bars`` — columns ``ts`` (the bucket start, naive UTC or tz-aware) and
    ``open``/``high``/``low``/``close``/``volume``, one symbol, oldest first — of length
    ``interval``, from ``cash``, filled by ``fills`` (default: no costs, next-open fills)."""
    chosen = make_strategy(strategy, params)
    every = parse_interval(interval)
    if not (isinstance(cash, (int, float)) and cash > 0 and np.isfinite(cash)):
        raise UsageError(f"cash must be a positive amount, got {cash!r}")
    model = fills or BarFills()
    engine = BarEngine(chosen, bar_events(bars, every.micros), model, cash=float(cash))
    return build_result(
        engine.run(),
        strategy=chosen.name,
        params=dict(chosen.params),
        interval=every.name,
        interval_seconds=every.seconds,
        fills_model=model,
    )


def bar_events(bars: pd.DataFrame, interval_us: int) -> list[Bar]:
    """``bars`` as :class:`~workbench.events.Bar` events, after checking what a backtest
    relies on: the columns, finite prices, times strictly increasing, one symbol."""
    missing = [c for c in ("ts", *BAR_FIELDS) if c not in bars.columns]
    if missing:
        raise UsageError(f"bars need the columns ts, {', '.join(BAR_FIELDS)}; missing {missing}")
    if bars.empty:
        raise UsageError("no bars to backtest on (an empty selection or date range?)")
    for key in ("exchange", "symbol"):
        if key in bars.columns and bars[key].nunique() > 1:
            raise UsageError(f"bars of several {key}s; backtest one at a time")
    ts = pd.to_datetime(bars["ts"])
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    starts = ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
    if (np.diff(starts) <= 0).any():
        raise UsageError("bars must be in time order with no repeated ts")
    columns = [bars[c].to_numpy(dtype=np.float64) for c in BAR_FIELDS]
    if not all(np.isfinite(c).all() for c in columns):
        raise UsageError("bars hold NaN or infinite values: clean or drop those rows first")
    exchange = str(bars["exchange"].iloc[0]) if "exchange" in bars.columns else ""
    symbol = str(bars["symbol"].iloc[0]) if "symbol" in bars.columns else ""
    n = len(starts)
    values: list[Any] = [c.tolist() for c in columns]
    return list(
        map(
            Bar,
            [exchange] * n,
            [symbol] * n,
            starts.tolist(),
            (starts + interval_us).tolist(),
            *values,
        )
    )
