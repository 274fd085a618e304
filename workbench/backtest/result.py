"""BacktestResult: a run's orders, fills, round trips and equity as DataFrames, with metrics."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.fills import BarFills
from workbench.core.metrics import drawdown, performance, periods_per_year
from workbench.engine.bars import Run
from workbench.errors import UsageError

_TIME = "datetime64[us]"


@dataclass
class BacktestResult:
    """What a backtest did and how it went. Times are naive UTC; money in the quote currency.

    ``orders``: one row per order, with what became of it. ``fills``: every execution.
    ``trades``: round trips, flat to flat. ``equity``: per bar, at its close — equity,
    drawdown, position and cash. ``metrics``: see :mod:`workbench.core.metrics`."""

    strategy: str
    params: dict[str, Any]
    symbol: str
    interval: str
    fills_model: BarFills
    orders: pd.DataFrame
    fills: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame
    metrics: dict[str, float]
    decisions: pd.DataFrame = field(repr=False)

    @property
    def look_ahead_prone(self) -> bool:
        """True when market orders filled at the close the strategy decided on."""
        return self.fills_model.look_ahead_prone

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_number(self.metrics[k])}" for k in _HEADLINE)
        about = " ".join(part for part in (self.strategy, self.symbol, self.interval) if part)
        return f"<BacktestResult {about}: {shown}>"

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
    fills_model: BarFills,
) -> BacktestResult:
    """Tables and metrics from an engine run."""
    ends = np.array([bar.end for bar in run.bars], dtype=np.int64)
    symbol = run.bars[0].symbol
    if (run.equity <= 0).any():
        at = int(np.argmax(run.equity <= 0))
        raise UsageError(
            f"{strategy}: equity fell to {run.equity[at]:.6g} at {ends[at].astype(_TIME)}: "
            "the account was wiped out, so its returns are undefined (trade smaller sizes)"
        )
    equity = pd.DataFrame(
        {
            "ts": ends.astype(_TIME),
            "equity": run.equity,
            "drawdown": drawdown(run.equity),
            "position": run.position,
            "cash": run.cash,
        }
    )
    orders = pd.DataFrame(
        {
            "client_order_id": [r.order.client_order_id for r in run.orders],
            "created": _times([r.order.created_us for r in run.orders]),
            "side": [r.order.side for r in run.orders],
            "type": [r.order.type for r in run.orders],
            "size": [r.order.size for r in run.orders],
            "target": [r.order.target for r in run.orders],
            "price": [r.order.price for r in run.orders],
            "tif": [r.order.tif for r in run.orders],
            "status": [r.status for r in run.orders],
            "reason": [r.reason for r in run.orders],
            "filled": [r.filled for r in run.orders],
            "average_price": [r.average_price for r in run.orders],
            "closed": _times([r.closed_us for r in run.orders]),
        }
    )
    fills = pd.DataFrame(
        {
            "ts": _times([f.ts for f in run.fills]),
            "client_order_id": [f.client_order_id for f in run.fills],
            "side": [f.side for f in run.fills],
            "price": [f.price for f in run.fills],
            "size": [f.size for f in run.fills],
            "fee": [f.fee for f in run.fills],
            "liquidity": [f.liquidity for f in run.fills],
        }
    )
    trades = pd.DataFrame(
        {
            "entry": _times([t.entry_ts for t in run.trips]),
            "exit": _times([t.exit_ts for t in run.trips]),
            "direction": [t.direction for t in run.trips],
            "size": [t.size for t in run.trips],
            "entry_price": [t.entry_price for t in run.trips],
            "exit_price": [t.exit_price for t in run.trips],
            "fees": [t.fees for t in run.trips],
            "pnl": [t.pnl for t in run.trips],
            "return": [t.return_pct for t in run.trips],
        }
    )
    metrics = performance(
        run.equity,
        ends,
        trades["pnl"].to_numpy(dtype=np.float64),
        periods_per_year=periods_per_year(interval_seconds),
        fees_paid=run.fees_paid,
        traded_notional=run.traded_notional,
        exposure=float(np.count_nonzero(run.position) / len(run.position)),
    )
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


def _times(values: list[int | None]) -> pd.Series:
    return pd.Series(pd.array(values, dtype="Int64")).astype(_TIME)
