"""Bars built from trades as they arrive, and the indicators a bar strategy reads off them.

A bar strategy that runs on trades — in a trade/book backtest or in the runner, on a live
feed — gets its bars from the prints, at its interval, closed on the Clock. A print belongs
to the bucket of the time it was received (the engine's clock: ``recv_ts``), aligned to the
interval since the epoch as ``resample`` aligns stored bars; bucketing on the clock means no
print can arrive for a bar that has already closed. A bucket without a print makes no bar.

``ctx.indicator`` cannot be computed over a whole column here — the column is not known yet
— so each indicator is computed again as each bar closes, over the newest ``lookback`` bars,
and its last value is the one the strategy sees. A causal indicator whose window fits in
the lookback (an SMA, a rolling volatility) gets exactly the values it would over the whole
column, up to float rounding; one with unbounded memory (an EMA) differs by less than its
weight beyond the lookback ((1 - 2/(span+1))**lookback: 1e-18 for a span of 100 over 2,048
bars). The lookback is :data:`LOOKBACK` bars, or twice the strategy's warm-up when that is
longer: a strategy's warm-up says how far back its indicators reach.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from workbench.engine.context import Series, computed
from workbench.engine.data import BAR_FIELDS
from workbench.errors import UsageError
from workbench.events import Bar

LOOKBACK = 2_048
"""Bars each indicator is recomputed over at a close, at least (see the module docstring)."""
NEVER = 1 << 62
"""The close time while no bar is open (µs): after every event."""


class LiveBars:
    """One symbol's bars of ``interval_us`` built from prints, with the series read off them."""

    def __init__(self, symbol: str, interval_us: int, *, lookback: int = LOOKBACK) -> None:
        if isinstance(interval_us, bool) or not isinstance(interval_us, int) or interval_us < 1:
            raise UsageError(f"a bar interval must be a positive number of µs, got {interval_us!r}")
        self.symbol = symbol
        self.interval_us = interval_us
        self.lookback = lookback
        self.count = 0  # bars closed so far
        self.end = NEVER  # when the open bar closes
        self._exchange = ""
        self._open = self._high = self._low = self._close = math.nan
        self._volume = 0.0
        # The newest bars' columns in buffers of twice the lookback, compacted to the front
        # when full: one copy per ``lookback`` bars.
        self._columns = {name: np.empty(2 * lookback) for name in BAR_FIELDS}
        self._stop = 0
        self._series: list[tuple[Callable[..., Any] | None, tuple[Any, ...], str, Series]] = []

    def add(self, exchange: str, time_us: int, price: float, size: float) -> None:
        """A print received at ``time_us``, which the engine has checked is before ``end``."""
        if self.end == NEVER:
            self._exchange = exchange
            start = time_us - time_us % self.interval_us
            self.end = start + self.interval_us
            self._open = self._high = self._low = price
            self._volume = 0.0
        elif price > self._high:
            self._high = price
        elif price < self._low:
            self._low = price
        self._close = price
        self._volume += size

    def close(self) -> Bar:
        """Close the open bar (the clock has reached ``end``) and update every series."""
        end = self.end
        bar = Bar(
            self._exchange,
            self.symbol,
            end - self.interval_us,
            end,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
        )
        self.end = NEVER
        self.count += 1
        if self._stop == 2 * self.lookback:
            keep = self.lookback - 1  # the newest, to which this bar is appended
            for column in self._columns.values():
                column[:keep] = column[self._stop - keep : self._stop]
            self._stop = keep
        at = self._stop
        columns = self._columns
        columns["open"][at], columns["high"][at], columns["low"][at] = bar.open, bar.high, bar.low
        columns["close"][at], columns["volume"][at] = bar.close, bar.volume
        self._stop = at + 1
        for function, args, source, series in self._series:
            series.append(self._newest(function, args, source))
        return bar

    def indicator(
        self, function: Callable[..., Any], args: tuple[Any, ...], source: str, keep: int
    ) -> Series:
        """A series of ``function`` over the bars' ``source`` column (see the module
        docstring): its past values computed as they would have been at each close."""
        column = self._column(source)
        past = [computed(function, column[: i + 1], args)[-1] for i in range(len(column))]
        return self._register(function, args, source, Series(past[-keep:], keep))

    def history(self, source: str, keep: int) -> Series:
        column = self._column(source)
        return self._register(None, (), source, Series(column[-keep:].tolist(), keep))

    def _register(
        self,
        function: Callable[..., Any] | None,
        args: tuple[Any, ...],
        source: str,
        series: Series,
    ) -> Series:
        self._series.append((function, args, source, series))
        return series

    def _column(self, source: str) -> npt.NDArray[np.float64]:
        """The newest ``lookback`` values of ``source`` (a view: read it before the next close)."""
        if source not in BAR_FIELDS:
            raise UsageError(f"unknown bar field {source!r}; choose from {', '.join(BAR_FIELDS)}")
        return self._columns[source][max(0, self._stop - self.lookback) : self._stop]

    def _newest(
        self, function: Callable[..., Any] | None, args: tuple[Any, ...], source: str
    ) -> float:
        column = self._column(source)
        if function is None:
            return float(column[-1])
        return float(computed(function, column, args)[-1])
