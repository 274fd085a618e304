"""SMA, EMA, rolling volatility and returns, twice: vectorized for research, streaming for live.

A strategy is prototyped on a whole history in a notebook (the vectorized functions: a numpy
array or a pandas Series in, the same kind out, index kept) and then runs tick by tick on
live data (the ``Streaming*`` classes: ``update(x)`` costs O(1) and returns the value after
``x``). Both must say the same thing, or a backtest would validate a different strategy than
the one that trades; tests hold them within 1e-9 of each other (relative to the data's
magnitude) on finite inputs. Outputs are NaN until enough inputs have arrived ("warm-up"),
at the same positions in both versions.

Definitions shared by both versions:

- ``sma(x, window)``: mean of the last ``window`` values; first value at index ``window - 1``.
- ``ema(x, span)``: ``alpha = 2 / (span + 1)``, seeded with the first input, then
  ``e = (1 - alpha) * e + alpha * x`` (pandas ``ewm(span=span, adjust=False)``); reported
  from index ``span - 1``, as an SMA of the same length would be, since before that the
  seed still dominates.
- ``rolling_vol(x, window)``: sample standard deviation (ddof=1) of the last ``window``
  values. Apply it to returns: ``rolling_vol(returns(close), 20)``; it is per bar, not
  annualized.
- ``returns(x)``: simple returns ``x[t] / x[t-1] - 1``, or ``log(x[t] / x[t-1])`` with
  ``log=True``; index 0 is NaN. Inputs are prices, so positive.

The streaming classes keep running sums, whose rounding errors would accumulate over a long
session; each re-sums its window exactly once per ``window`` ticks, which bounds the drift
and keeps the cost O(1) amortized (StreamingVol also re-sums when the variance collapses,
where a sliding update would lose its precision). Non-finite inputs are not supported: a
NaN poisons the running sum until the next re-summation after it has left the window.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter1d

from workbench.errors import UsageError

Values = TypeVar("Values", bound="npt.NDArray[np.float64] | pd.Series")
"""A float array or a Series: every vectorized function returns the kind it was given."""

_CHUNK = 8_192
"""Windows per block in :func:`sma` (bounding a running sum's drift) and :func:`rolling_vol`
(bounding its temporary to ~window × 64 kB)."""

_COLLAPSE = 1e-4
"""StreamingVol re-sums early when the variance falls below this fraction of its recent peak.

A sliding variance update keeps an absolute error of about eps × the largest sum of squares
it has carried; once the true variance collapses far below that peak, the error would
dominate the result. Re-summing there keeps the relative error of the volatility below
about 1e-12.
"""


def sma(values: Values, window: int) -> Values:
    """Simple moving average: the mean of each full window, NaN before the first."""
    _check_window(window, 1)
    x = _floats(values)
    out = np.full(len(x), np.nan)
    # A running sum in C (scipy's centred window, shifted to end at each index): O(n)
    # whatever the window. It restarts every block, so its rounding cannot build up over a
    # long history: within ~2e-14 (relative) of summing every window afresh.
    origin = (window - 1) // 2
    for start in range(0, len(x) - window + 1, _CHUNK):
        block = x[start : start + _CHUNK + window - 1]
        out[start + window - 1 : start + len(block)] = uniform_filter1d(
            block, window, origin=origin
        )[window - 1 :]
    return _like(values, out)


def ema(values: Values, span: int) -> Values:
    """Exponential moving average with ``alpha = 2 / (span + 1)``, seeded with the first value."""
    _check_window(span, 1)
    series = pd.Series(_floats(values))
    out = series.ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()
    return _like(values, out)


def rolling_vol(values: Values, window: int) -> Values:
    """Sample standard deviation (ddof=1) of each full window, NaN before the first."""
    _check_window(window, 2)
    x = _floats(values)
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        windows = sliding_window_view(x, window)
        # std() materializes each window's deviations, so go block by block.
        for start in range(0, len(windows), _CHUNK):
            block = windows[start : start + _CHUNK]
            first = window - 1 + start
            out[first : first + len(block)] = block.std(axis=-1, ddof=1)
    return _like(values, out)


def returns(values: Values, *, log: bool = False) -> Values:
    """Simple (or log) return from each value to the next; the first is NaN."""
    x = _floats(values)
    out = np.full(len(x), np.nan)
    if len(x) > 1:
        ratio = x[1:] / x[:-1]
        out[1:] = np.log(ratio) if log else ratio - 1.0
    return _like(values, out)


class StreamingSMA:
    """Simple moving average over the last ``window`` values, O(1) per tick.

    The running total starts as NaN, so outputs are NaN without a warm-up branch until the
    first exact re-summation at the ``window``-th value.
    """

    __slots__ = ("_buffer", "_index", "_total", "window")

    def __init__(self, window: int) -> None:
        _check_window(window, 1)
        self.window = window
        self._buffer = [0.0] * window
        self._index = 0
        self._total = math.nan

    def update(self, x: float) -> float:
        """Add ``x``; the mean of the last ``window`` values, NaN until there are that many."""
        i = self._index
        buffer = self._buffer
        self._total += x - buffer[i]
        buffer[i] = x
        i += 1
        if i == self.window:
            i = 0
            self._total = sum(buffer)
        self._index = i
        return self._total / self.window


class StreamingEMA:
    """Exponential moving average, seeded with the first value; NaN for the first span - 1."""

    __slots__ = ("_alpha", "_count", "_value", "span")

    def __init__(self, span: int) -> None:
        _check_window(span, 1)
        self.span = span
        self._alpha = 2.0 / (span + 1)
        self._value = math.nan
        self._count = 0

    def update(self, x: float) -> float:
        """Add ``x``; the EMA after it, NaN until ``span`` values have arrived."""
        if self._count:
            self._value = (1.0 - self._alpha) * self._value + self._alpha * x
        else:
            self._value = x
        if self._count < self.span:
            self._count += 1
            if self._count < self.span:
                return math.nan
        return self._value


class StreamingVol:
    """Sample standard deviation of the last ``window`` values (sliding Welford), O(1)."""

    __slots__ = ("_buffer", "_count", "_index", "_m2", "_mean", "_peak", "window")

    def __init__(self, window: int) -> None:
        _check_window(window, 2)
        self.window = window
        self._buffer = [0.0] * window
        self._index = 0
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._peak = 0.0

    def update(self, x: float) -> float:
        """Add ``x``; the volatility of the last ``window`` values, NaN until that many."""
        n = self.window
        i = self._index
        old = self._buffer[i]
        self._buffer[i] = x
        mean = self._mean
        if self._count < n:
            self._count += 1
            new_mean = mean + (x - mean) / self._count
            self._m2 += (x - mean) * (x - new_mean)
        else:
            new_mean = mean + (x - old) / n
            self._m2 += (x - old) * ((x - new_mean) + (old - mean))
        self._mean = new_mean
        self._peak = max(self._peak, self._m2)
        i += 1
        if i == n:
            i = 0
            self._resum()
        elif self._m2 < _COLLAPSE * self._peak and self._count == n:
            self._resum()
        self._index = i
        if self._count < n:
            return math.nan
        return math.sqrt(max(self._m2, 0.0) / (n - 1))

    def _resum(self) -> None:
        """Recompute mean and sum of squared deviations exactly (two passes over the window)."""
        mean = sum(self._buffer) / self.window
        self._mean = mean
        self._m2 = sum((v - mean) * (v - mean) for v in self._buffer)
        self._peak = self._m2


class StreamingReturns:
    """Return from the previous value to this one (simple, or log with ``log=True``)."""

    __slots__ = ("_previous", "log")

    def __init__(self, *, log: bool = False) -> None:
        self.log = log
        self._previous = math.nan

    def update(self, x: float) -> float:
        """Add ``x``; its return over the previous value, NaN for the first."""
        previous, self._previous = self._previous, x
        ratio = x / previous
        return math.log(ratio) if self.log else ratio - 1.0


def _check_window(window: int, minimum: int) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < minimum:
        raise UsageError(f"window must be an integer >= {minimum}, got {window!r}")


def _floats(values: Any) -> npt.NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


def _like(values: Values, out: npt.NDArray[np.float64]) -> Values:
    """``out`` as the kind ``values`` was: a Series keeps the input's index and name."""
    if isinstance(values, pd.Series):
        return cast(Values, pd.Series(out, index=values.index, name=values.name))
    return cast(Values, out)
