"""Backtest performance metrics from an equity curve and round-trip trades, exactly defined.

:func:`performance` turns a backtest's result into the numbers of ``metrics.json``. Every one
is defined below, so a user can recompute it by hand from the equity curve and the trades.

Inputs: ``equity[0..n-1]``, the mark-to-market equity at each bar close (n >= 1, all finite
and > 0), the time ``times_us[t]`` of each point (µs since the epoch, strictly increasing),
and ``pnl``, the net PnL after fees of each closed round-trip trade (possibly none). ``P`` is
``periods_per_year``, the number of bars in a year (:func:`periods_per_year`).

- Per-period returns ``r_t = equity[t] / equity[t-1] - 1`` for ``t = 1..n-1``; there are
  ``T = n - 1`` of them. ``mean`` is over all T, ``std`` is the sample standard deviation
  (ddof=1).
- ``drawdown[t] = equity[t] / max(equity[0..t]) - 1``: 0 at a peak, negative below it.
- ``total_return = equity[-1] / equity[0] - 1``.
- ``cagr = (equity[-1] / equity[0]) ** (P / T) - 1``; NaN when T = 0, inf when it overflows.
- ``annual_volatility = std(r) * sqrt(P)``; NaN when T < 2.
- ``sharpe = mean(r) / std(r) * sqrt(P)``, risk-free rate 0; NaN when T < 2 or std(r) = 0.
- ``sortino = mean(r) / sqrt(mean(min(r_t, 0) ** 2)) * sqrt(P)``, target 0, the downside
  deviation averaged over all T returns; NaN when T = 0 or the downside deviation is 0.
- ``max_drawdown = -min(drawdown)``, a positive fraction; 0.0 when equity never falls.
- ``max_drawdown_duration_s``: the longest time, in seconds, spent below a previous peak,
  from the time of the peak to the time equity first gets back to (>=) it, or to the last
  point if it never does; 0.0 when equity is never below a peak.
- ``calmar = cagr / max_drawdown``; NaN when max_drawdown = 0.
- ``win_rate`` = the share of trades with pnl > 0 (a zero-PnL trade is not a win).
- ``profit_factor`` = (sum of the positive pnl) / |sum of the negative pnl|; inf with gains
  and no losses, NaN when both sums are 0.
- ``average_trade = mean(pnl)``.
- ``win_rate``, ``profit_factor`` and ``average_trade`` are NaN with no trades.
- ``exposure``: the fraction of bars holding a non-zero position, as given, in [0, 1].
- ``turnover = traded_notional / equity[0]``, where ``traded_notional`` is the sum of
  ``|qty * price|`` over all fills.
- ``fees_paid``: as given; ``trades``: the number of round-trip trades.

NaN means "undefined for this run", never zero, so a metric that cannot be computed is not
mistaken for a measured value.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from workbench.core.intervals import DAY_SECONDS
from workbench.errors import UsageError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

YEAR_SECONDS: Final = 365 * DAY_SECONDS
"""Seconds in a trading year: crypto trades 24/7, so every day of 365 counts."""


def periods_per_year(interval_seconds: float) -> float:
    """Bars of ``interval_seconds`` in a 24/7 year (``YEAR_SECONDS / interval_seconds``), the
    factor that annualizes per-bar statistics."""
    if not (math.isfinite(interval_seconds) and interval_seconds > 0):
        raise UsageError(
            f"bar interval must be a positive number of seconds, got {interval_seconds!r}"
        )
    return YEAR_SECONDS / interval_seconds


def drawdown(equity: Floats) -> Floats:
    """How far each point is below the highest equity so far, as a fraction (0 at peaks)."""
    curve = _checked_equity(equity)
    return curve / np.maximum.accumulate(curve) - 1.0


def performance(
    equity: Floats,
    times_us: Ints,
    trade_pnl: Floats,
    *,
    periods_per_year: float,
    fees_paid: float,
    traded_notional: float,
    exposure: float,
) -> dict[str, float]:
    """The metrics defined in the module docstring, keyed in the order ``metrics.json`` lists
    them."""
    curve = _checked_equity(equity)
    times = np.asarray(times_us)
    pnl = np.asarray(trade_pnl, dtype=np.float64)
    if times.shape != curve.shape:
        raise UsageError(
            f"times_us must hold one time per equity point: got shape {times.shape} "
            f"for equity of shape {curve.shape}"
        )
    steps = np.diff(times)
    if np.any(steps <= 0):
        t = int(np.argmax(steps <= 0)) + 1
        raise UsageError(
            f"times_us must be strictly increasing: times_us[{t}] = {times[t]} "
            f"is not after times_us[{t - 1}] = {times[t - 1]}"
        )
    if pnl.ndim != 1 or not np.all(np.isfinite(pnl)):
        raise UsageError("trade_pnl must be a 1-D array of finite PnL values, one per trade")
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise UsageError(f"periods_per_year must be positive, got {periods_per_year!r}")
    if not 0.0 <= exposure <= 1.0:
        raise UsageError(f"exposure is a fraction of bars and must be in [0, 1], got {exposure!r}")

    growth = float(curve[-1] / curve[0])
    cagr = _cagr(growth, periods_per_year, len(curve) - 1)
    peak = np.maximum.accumulate(curve)
    max_drawdown = 1.0 - float(np.min(curve / peak))  # = -min(drawdown), exactly
    return {
        "total_return": growth - 1.0,
        "cagr": cagr,
        **return_stats(curve[1:] / curve[:-1] - 1.0, periods_per_year),
        "max_drawdown": max_drawdown,
        "max_drawdown_duration_s": _max_drawdown_duration_s(curve, peak, times),
        "calmar": cagr / max_drawdown if max_drawdown > 0 else math.nan,
        **_trade_stats(pnl),
        "exposure": float(exposure),
        "turnover": float(traded_notional) / float(curve[0]),
        "fees_paid": float(fees_paid),
        "trades": float(len(pnl)),
    }


def _checked_equity(equity: Floats) -> Floats:
    """The curve as float64, refused unless it is a non-empty 1-D array of finite values > 0,
    the only curves whose returns and drawdowns are defined."""
    curve = np.asarray(equity, dtype=np.float64)
    if curve.ndim != 1 or len(curve) == 0:
        raise UsageError(f"equity must be a non-empty 1-D array, got shape {curve.shape}")
    bad = ~(np.isfinite(curve) & (curve > 0))
    if np.any(bad):
        t = int(np.argmax(bad))
        raise UsageError(f"equity must be finite and > 0 at every point: equity[{t}] = {curve[t]}")
    return curve


def _cagr(growth: float, periods_per_year: float, returns: int) -> float:
    """Annualized growth rate over ``returns`` bars; inf, not OverflowError, for a short run
    that would compound past the float range."""
    if returns == 0:
        return math.nan
    with np.errstate(over="ignore"):
        return float(np.power(growth, periods_per_year / returns)) - 1.0


def return_stats(returns: Floats, periods_per_year: float) -> dict[str, float]:
    """annual_volatility, sharpe and sortino of the per-period returns."""
    scale = math.sqrt(periods_per_year)
    count = len(returns)
    mean = float(np.mean(returns)) if count else math.nan
    std = float(np.std(returns, ddof=1)) if count >= 2 else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2))) if count else math.nan
    return {
        "annual_volatility": std * scale,
        "sharpe": mean / std * scale if std > 0 else math.nan,
        "sortino": mean / downside * scale if downside > 0 else math.nan,
    }


def _max_drawdown_duration_s(curve: Floats, peak: Floats, times: Ints) -> float:
    """Longest underwater spell in seconds: a spell of bars below the running peak starts at
    the bar before it (the peak) and ends at the bar after it (the first back at the peak),
    or at the last bar if it runs to the end."""
    under = (curve < peak).astype(np.int8)
    edges = np.diff(under, prepend=0, append=0)
    first_under = np.flatnonzero(edges == 1)  # never 0: equity[0] is its own peak
    back = np.minimum(np.flatnonzero(edges == -1), len(curve) - 1)
    return float(np.max(times[back] - times[first_under - 1], initial=0)) / 1e6


def _trade_stats(pnl: Floats) -> dict[str, float]:
    """win_rate, profit_factor and average_trade of the round-trip trades."""
    if len(pnl) == 0:
        return {"win_rate": math.nan, "profit_factor": math.nan, "average_trade": math.nan}
    gains = float(np.sum(pnl[pnl > 0]))
    losses = -float(np.sum(pnl[pnl < 0]))
    no_losses = math.inf if gains > 0 else math.nan
    return {
        "win_rate": float(np.mean(pnl > 0)),
        "profit_factor": gains / losses if losses > 0 else no_losses,
        "average_trade": float(np.mean(pnl)),
    }
