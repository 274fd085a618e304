"""BarData: one symbol's bars as columns, checked once, shared by every engine mode.

The event engine turns them into :class:`~workbench.events.Bar` events; the vectorized path
never does, except for the few bars an order fills on. Keeping the columns is what lets both
run on the same input without converting it twice, and what a sweep ships to its workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.errors import UsageError
from workbench.events import Bar

BAR_FIELDS = ("open", "high", "low", "close", "volume")

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BarData:
    """Bars of one symbol, oldest first: ``ts`` the bucket starts and ``end`` the closes (µs
    since the epoch, UTC), then the OHLCV columns; ``frame`` is the DataFrame they came from,
    what a strategy's ``signals()`` is given; ``halted`` marks the bars no order may fill on
    or be placed at (they overlap a window excluded from trading, see :func:`halted_bars`)."""

    exchange: str
    symbol: str
    ts: Ints
    end: Ints
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats
    frame: pd.DataFrame
    halted: Bools

    def __len__(self) -> int:
        return len(self.ts)

    def column(self, name: str) -> Floats:
        if name not in BAR_FIELDS:
            raise UsageError(f"unknown bar field {name!r}; choose from {', '.join(BAR_FIELDS)}")
        column: Floats = getattr(self, name)
        return column

    def bar(self, i: int) -> Bar:
        return Bar(
            self.exchange,
            self.symbol,
            int(self.ts[i]),
            int(self.end[i]),
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            float(self.volume[i]),
        )

    def events(self) -> list[Bar]:
        """Every bar as an event, built once (by ``map`` over the columns' lists: C all the
        way) and shared by every run on this data — a sweep's trials in one process."""
        built: list[Bar] | None = self.__dict__.get("_events")
        if built is None:
            n = len(self)
            values: list[Any] = [self.column(name).tolist() for name in BAR_FIELDS]
            columns = (self.ts.tolist(), self.end.tolist(), *values)
            built = list(map(Bar, [self.exchange] * n, [self.symbol] * n, *columns))
            object.__setattr__(self, "_events", built)  # a cache: the data stays frozen
        return built

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a sweep's workers) without the events: rebuilding them is cheaper."""
        return {k: v for k, v in self.__dict__.items() if k != "_events"}

    @classmethod
    def from_frame(
        cls, bars: pd.DataFrame, interval_us: int, exclude: pd.DataFrame | None = None
    ) -> BarData:
        """``bars`` — columns ``ts`` (the bucket start, naive UTC or tz-aware) and
        ``open``/``high``/``low``/``close``/``volume``, optionally ``exchange``/``symbol`` —
        after checking what a backtest relies on: the columns, finite prices, times strictly
        increasing, one symbol. ``exclude``: windows (``start``, ``end``; an ``end`` of NaT
        runs to the last bar) whose bars are halted."""
        missing = [c for c in ("ts", *BAR_FIELDS) if c not in bars.columns]
        if missing:
            raise UsageError(
                f"bars need the columns ts, {', '.join(BAR_FIELDS)}; missing {missing}"
            )
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
        columns = {c: bars[c].to_numpy(dtype=np.float64) for c in BAR_FIELDS}
        if not all(np.isfinite(c).all() for c in columns.values()):
            raise UsageError("bars hold NaN or infinite values: clean or drop those rows first")
        ends = starts + interval_us
        return cls(
            exchange=str(bars["exchange"].iloc[0]) if "exchange" in bars.columns else "",
            symbol=str(bars["symbol"].iloc[0]) if "symbol" in bars.columns else "",
            ts=starts,
            end=ends,
            frame=bars,
            halted=halted_bars(starts, ends, exclude),
            **columns,
        )


def halted_bars(starts: Ints, ends: Ints, windows: pd.DataFrame | None) -> Bools:
    """Which bars ``[start, end)`` overlap a window ``[start, end)`` of ``windows``: a bar
    with any part inside one was (partly) made of data that cannot be trusted."""
    halted = np.zeros(len(starts), dtype=bool)
    if windows is None or windows.empty:
        return halted
    if not {"start", "end"} <= set(windows.columns):
        raise UsageError("windows to exclude need the columns start and end")
    low = _micros(windows["start"])
    high = _micros(windows["end"])
    if np.isnan(low).any():
        raise UsageError("a window to exclude has no start")
    high[np.isnan(high)] = np.inf  # still open: to the end
    first = np.searchsorted(ends, low, side="right")  # the first bar ending after the start
    last = np.searchsorted(starts, high, side="left")  # bars starting before the end
    marks = np.zeros(len(starts) + 1, dtype=np.int64)
    np.add.at(marks, first, 1)
    np.add.at(marks, np.maximum(last, first), -1)
    return np.cumsum(marks[:-1]) > 0


def _micros(times: pd.Series) -> Floats:
    """Naive-UTC or tz-aware times as float µs since the epoch; NaT as NaN."""
    stamps = pd.to_datetime(times)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    micros: Floats = stamps.to_numpy(dtype="datetime64[us]").astype(np.int64).astype(np.float64)
    micros[stamps.isna().to_numpy()] = np.nan
    return micros
