"""The built-in ``vol_breakout``: trade bursts of realised volatility that volume confirms."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.core.indicators import returns, rolling_vol, sma
from workbench.engine.context import Context
from workbench.errors import UsageError
from workbench.events import Bar, Order, Side
from workbench.strategy.base import Strategy
from workbench.strategy.params import Param

Floats = npt.NDArray[np.float64]


class VolBreakout(Strategy):
    """Enter in the direction of a realised-volatility breakout that volume confirms.

    Windows are in bars, as in sma_cross: on one-minute bars the default ``window=30`` is
    the 30-minute realised volatility. Every rule is decided at a bar's close from values
    known at that close, so (by default) filled at the next bar's open.

    - Realised vol ``vol[t]``: the sample standard deviation of the last ``window`` simple
      close-to-close returns, per bar (not annualised).
    - Bands: ``upper[t]`` and ``lower[t]`` are the ``quantile`` and ``exit_quantile``
      (linearly interpolated) of the ``lookback`` vols before bar t; bar t is left out, so
      a burst is measured against what came before it.
    - Breakout, when flat: ``vol[t] > upper[t]`` and ``volume[t]`` above the mean volume of
      the ``volume_window`` bars before t. Its direction is the sign of
      ``close[t] - close[t - window]``, the move across the vol window: up buys with all
      equity; down goes all in short with ``short=true`` and is ignored otherwise; no move,
      no trade.
    - Stop: submitted with the entry, a stop-market order that flattens the position,
      triggered at ``close[t] * exp(-stop * vol[t])`` for a long, ``exp(+stop * vol[t])``
      for a short. It works from the bar the entry fills on and fills by the bar fill model
      (at the stop price, or at the open of a bar that gaps through it). ``stop=0``: none.
    - Exit, when holding: once ``vol[t] <= lower[t]`` (the vol has normalised) close at
      market and cancel the stop. A breakout while holding is ignored (no adding, no
      reversing); after an exit or a stop, the next breakout enters again.
    - Warm-up: ``max(window + lookback, volume_window)`` bars, so the first decision has
      every value above defined.
    """

    name = "vol_breakout"
    window = Param(30, low=2, doc="realised-vol window, in bars")
    lookback = Param(500, low=2, doc="bars of past vol the quantiles are taken over")
    quantile = Param(0.9, low=0.0, high=1.0, doc="breakout: vol above this quantile, in (0, 1)")
    exit_quantile = Param(
        0.5, low=0.0, high=1.0, doc="exit: vol at or below this quantile, in (0, quantile]"
    )
    volume_window = Param(30, low=1, doc="bars of the mean volume a breakout must exceed")
    stop = Param(3.0, low=0.0, doc="stop distance in realised vols (0: no stop)")
    short = Param(False, doc="go short on a downward breakout")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        for key in ("quantile", "exit_quantile"):
            if not 0.0 < self.params[key] < 1.0:
                raise UsageError(
                    f"vol_breakout: parameter {key!r} must be strictly between 0 and 1, "
                    f"got {self.params[key]!r}"
                )
        if self.exit_quantile > self.quantile:
            raise UsageError(
                f"vol_breakout: parameter 'exit_quantile' ({self.exit_quantile}) must not "
                f"exceed quantile ({self.quantile})"
            )

    def warmup(self) -> int:
        return max(self.window + self.lookback, self.volume_window)

    def on_start(self, ctx: Context) -> None:
        window, lookback = self.window, self.lookback
        self._vol = ctx.indicator(realised_vol, window)
        self._upper = ctx.indicator(vol_quantile, window, lookback, self.quantile)
        self._lower = ctx.indicator(vol_quantile, window, lookback, self.exit_quantile)
        self._volume_mean = ctx.indicator(prior_mean, self.volume_window, source="volume")
        self._close = ctx.history("close", keep=window + 1)  # [0] is close[t - window]
        self._stop: Order | None = None

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        vol = self._vol[-1]
        if ctx.position:
            lower = self._lower[-1]
            if vol <= lower:
                ctx.log("vol normalised", vol=vol, lower=lower)
                ctx.close()
                if self._stop is not None:
                    ctx.cancel(self._stop)
            return
        upper, volume, volume_mean = self._upper[-1], bar.volume, self._volume_mean[-1]
        if not (vol > upper and volume > volume_mean):
            return
        move = bar.close - self._close[0]
        if move > 0:
            direction = 1.0
        elif move < 0 and self.short:
            direction = -1.0
        else:
            return
        ctx.log(
            "breakout",
            direction=direction,
            vol=vol,
            upper=upper,
            volume=volume,
            volume_mean=volume_mean,
        )
        ctx.target(direction)
        if self.stop:
            price = bar.close * math.exp(-direction * self.stop * vol)
            side: Side = "sell" if direction > 0 else "buy"
            self._stop = ctx.submit(side, target=0.0, type="stop", price=price)


def realised_vol(close: Floats, window: int) -> Floats:
    """The sample standard deviation of the last ``window`` returns of ``close``, per bar."""
    return rolling_vol(returns(close), window)


def vol_quantile(close: Floats, window: int, lookback: int, quantile: float) -> Floats:
    """The ``quantile`` of :func:`realised_vol` over the ``lookback`` bars before each bar
    (not including it); NaN until there are that many vols."""
    vol = pd.Series(realised_vol(close, window)).shift(1)
    return np.asarray(vol.rolling(lookback).quantile(quantile).to_numpy(), dtype=np.float64)


def prior_mean(values: Floats, window: int) -> Floats:
    """The mean of the ``window`` values before each one (not including it)."""
    out = np.full(len(values), np.nan)
    out[1:] = sma(values, window)[:-1]
    return out
