"""BacktestResult: a run's orders, fills, round trips and equity as DataFrames, with metrics."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.recipe import Recipe
from workbench.core.bookfills import BookFills
from workbench.core.fills import BarFills
from workbench.core.metrics import drawdown, performance, periods_per_year
from workbench.engine.bars import Run
from workbench.engine.vectorized import Execution
from workbench.errors import UsageError

_TIME = "datetime64[us]"


@dataclass
class BacktestResult:
    """What a backtest did and how it went. Times are naive UTC; money in the quote currency.

    ``orders``: one row per order, with what became of it. ``fills``: every execution.
    ``trades``: round trips, flat to flat. ``equity``: per bar, at its close — the close
    price, equity, drawdown, position and cash; a trade/book backtest's per mark, every
    ``interval``, with the price it marked at as ``close``. ``metrics``: see
    :mod:`workbench.core.metrics`."""

    strategy: str
    params: dict[str, Any]
    symbol: str
    interval: str
    fills_model: BarFills | BookFills
    orders: pd.DataFrame
    fills: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame
    metrics: dict[str, float]
    decisions: pd.DataFrame = field(repr=False)
    recipe: Recipe | None = field(default=None, repr=False)
    """What ran, to run it again changed (a bar backtest's; None for a trade/book one)."""

    @property
    def look_ahead_prone(self) -> bool:
        """True when market orders filled at the close the strategy decided on."""
        return isinstance(self.fills_model, BarFills) and self.fills_model.look_ahead_prone

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_number(self.metrics[k])}" for k in _HEADLINE)
        about = " ".join(part for part in (self.strategy, self.symbol, self.interval) if part)
        return f"<BacktestResult {about}: {shown}>"

    def plot(self, points: int = 2_000) -> Any:
        """Price with entry and exit markers, equity and drawdown: three bqplot charts over
        one time axis, in an ipywidgets box (see :mod:`workbench.backtest.plot`)."""
        from workbench.backtest.plot import plot_result

        return plot_result(self, points=points)

    def _repr_html_(self) -> str:
        warning = (
            "<p><b>Look-ahead-prone:</b> market orders filled at the close they were decided "
            "on (fill_at='close').</p>"
            if self.look_ahead_prone
            else ""
        )
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{_number(v)}</td></tr>"
            for k, v in self.metrics.items()
        )
        params = html.escape(", ".join(f"{k}={v!r}" for k, v in self.params.items()))
        return (
            f"<div><h4>{html.escape(self.strategy)}({params}) on {html.escape(self.symbol)} "
            f"{html.escape(self.interval)}</h4>{warning}<table>{rows}</table></div>"
        )


_HEADLINE = ("total_return", "sharpe", "max_drawdown", "trades")


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def build_result(
    run: Run,
    *,
    strategy: str,
    params: dict[str, Any],
    interval: str,
    interval_seconds: float,
    fills_model: BarFills | BookFills,
) -> BacktestResult:
    """Tables and metrics from an engine run."""
    ends = run.data.end
    symbol = run.data.symbol
    ruin = wiped_out(run)
    if ruin:
        raise UsageError(f"{strategy}: {ruin}")
    equity = pd.DataFrame(
        {
            "ts": ends.astype(_TIME),
            "close": run.data.close,
            "equity": run.equity,
            "drawdown": drawdown(run.equity),
            "position": run.position,
            "cash": run.cash,
        }
    )
    orders = _table(
        run.orders,
        {
            "client_order_id": "order.client_order_id",
            "created": "order.created_us",
            "side": "order.side",
            "type": "order.type",
            "size": "order.size",
            "target": "order.target",
            "price": "order.price",
            "tif": "order.tif",
            "status": "status",
            "reason": "reason",
            "filled": "filled",
            "average_price": "average_price",
            "closed": "closed_us",
        },
        times=("created", "closed"),
    )
    fills = _table(
        run.fills,
        {
            name: name
            for name in ("ts", "client_order_id", "side", "price", "size", "fee", "liquidity")
        },
        times=("ts",),
    )
    trades = _table(
        run.trips,
        {
            "entry": "entry_ts",
            "exit": "exit_ts",
            "direction": "direction",
            "size": "size",
            "entry_price": "entry_price",
            "exit_price": "exit_price",
            "fees": "fees",
            "pnl": "pnl",
            "return": "return_pct",
        },
        times=("entry", "exit"),
    )
    metrics = run_metrics(run, interval_seconds)
    decisions = pd.DataFrame(
        {
            "ts": _times([t for t, _, _ in run.decisions]),
            "message": [m for _, m, _ in run.decisions],
            "fields": [f for _, _, f in run.decisions],
        }
    )
    return BacktestResult(
        strategy=strategy,
        params=params,
        symbol=symbol,
        interval=interval,
        fills_model=fills_model,
        orders=orders,
        fills=fills,
        trades=trades,
        equity=equity,
        metrics=metrics,
        decisions=decisions,
    )


def wiped_out(run: Run | Execution) -> str | None:
    """Why the run's returns are undefined (its equity reached zero), or None."""
    broke = run.equity <= 0
    if not broke.any():
        return None
    at = int(np.argmax(broke))
    return (
        f"equity fell to {run.equity[at]:.6g} at {run.data.end[at].astype(_TIME)}: the account "
        "was wiped out, so its returns are undefined (trade smaller sizes)"
    )


def run_metrics(run: Run | Execution, interval_seconds: float) -> dict[str, float]:
    """The metrics of :mod:`workbench.core.metrics` for a run that was not wiped out."""
    return performance(
        run.equity,
        run.data.end,
        run.trip_pnl,
        periods_per_year=periods_per_year(interval_seconds),
        fees_paid=run.fees_paid,
        traded_notional=run.traded_notional,
        exposure=float(np.count_nonzero(run.position) / len(run.position)),
    )


def _table(rows: Sequence[object], columns: dict[str, str], times: tuple[str, ...]) -> pd.DataFrame:
    """One row per item: each column an attribute (dotted for nested ones); ``times`` µs."""
    values = {name: list(map(attrgetter(path), rows)) for name, path in columns.items()}
    return pd.DataFrame(
        {name: _times(column) if name in times else column for name, column in values.items()}
    )


def _times(values: list[int | None]) -> pd.Series:
    return pd.Series(pd.array(values, dtype="Int64")).astype(_TIME)
