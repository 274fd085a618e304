"""The built-in strategies, found by name: ``sma_cross`` here, ``vol_breakout`` in its module."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.core.indicators import sma
from workbench.engine.context import Context
from workbench.errors import UsageError
from workbench.events import Bar
from workbench.strategy.base import Strategy
from workbench.strategy.params import Param
from workbench.strategy.vol_breakout import VolBreakout


class SmaCross(Strategy):
    """Long (or short) on crosses of a fast and a slow simple moving average of the close.

    A cross up is ``fast[t-1] <= slow[t-1]`` and ``fast[t] > slow[t]``: buy with all equity.
    A cross down (``>=`` then ``<``) closes the position, and with ``short=true`` also goes
    all in short. Decided at the bar's close, so (by default) filled at the next bar's open.
    """

    name = "sma_cross"
    fast = Param(10, low=1, doc="fast SMA window, in bars")
    slow = Param(30, low=2, doc="slow SMA window, in bars")
    short = Param(False, doc="go short on a cross down")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if self.fast >= self.slow:
            raise UsageError(f"sma_cross: fast ({self.fast}) must be below slow ({self.slow})")

    def warmup(self) -> int:
        return self.slow  # the first bar with a previous slow SMA to compare against

    def on_start(self, ctx: Context) -> None:
        self._fast = ctx.indicator("sma", self.fast)
        self._slow = ctx.indicator("sma", self.slow)
        self._down = -1.0 if self.short else 0.0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        fast, slow = self._fast, self._slow
        now_fast, now_slow, was_fast, was_slow = fast[-1], slow[-1], fast[-2], slow[-2]
        if was_fast <= was_slow and now_fast > now_slow:
            ctx.target(1.0)
        elif was_fast >= was_slow and now_fast < now_slow:
            ctx.target(self._down)

    def signals(self, bars: pd.DataFrame) -> npt.NDArray[np.float64]:
        close = bars["close"].to_numpy(dtype=np.float64)
        fast, slow = sma(close, self.fast), sma(close, self.slow)
        # fast[t-1] <= slow[t-1] is "not above" at t-1 once both are defined, from bar
        # slow - 1 on; the first bar with a defined previous pair is the warm-up, slow.
        above, below = fast > slow, fast < slow
        targets = np.full(len(close), np.nan)
        targets[1:][below[1:] & ~below[:-1]] = -1.0 if self.short else 0.0
        targets[1:][above[1:] & ~above[:-1]] = 1.0
        targets[: self.slow] = np.nan
        return targets


BUILT_IN: dict[str, type[Strategy]] = {cls.name: cls for cls in (SmaCross, VolBreakout)}
