"""A sliding window over the newest trades, for live charts: columns, SMAs, volume buckets.

A live price chart needs, every frame, the last ``size`` trades as arrays. Rebuilding them
from a list each frame would cost O(size) Python work; here the columns live in numpy
buffers of twice the window, written in blocks, and compacted back to the front once the
end is reached (one copy per ~``size`` trades, so O(1) amortized per trade). The SMA columns
come from :class:`~workbench.core.indicators.StreamingSMA`, O(1) per trade, fed every trade
that can still matter — not just the visible window — so on screen they equal
``indicators.sma`` over the whole stream.

Trade times are clamped to be non-decreasing: a late trade (a REST backfill) is placed at
the newest time seen instead of drawing the line backwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from workbench.core.indicators import StreamingSMA
from workbench.errors import UsageError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_SECOND = 1_000_000
BUCKET_WIDTHS_US: tuple[int, ...] = tuple(
    round(s * _SECOND)
    for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60)
) + tuple(m * 60 * _SECOND for m in (2, 5, 10, 15, 30, 60, 120, 360, 720, 1440))
"""Round volume-bucket widths (µs), so the bars keep their width while the window slides."""


class TradeWindow:
    """The newest ``size`` trades as numpy columns (time µs, price, size, one per SMA)."""

    __slots__ = ("_cols", "_end", "_last_ts", "_smas", "_start", "_ts", "periods", "size", "total")

    def __init__(self, size: int, sma: Sequence[int] = ()) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise UsageError(f"window must be an integer >= 2, got {size!r}")
        self.size = size
        self.periods = tuple(sma)
        self._smas = [StreamingSMA(p) for p in self.periods]
        self._ts: Ints = np.zeros(2 * size, dtype=np.int64)
        self._cols: Floats = np.zeros((2 + len(self._smas), 2 * size))
        self._start = 0
        self._end = 0
        self._last_ts = np.iinfo(np.int64).min
        self.total = 0
        """Trades ever added."""

    def __len__(self) -> int:
        return self._end - self._start

    def extend(self, ts: Sequence[int], prices: Sequence[float], sizes: Sequence[float]) -> None:
        """Append trades, oldest first; only the newest ``size`` stay visible."""
        count = len(ts)
        if count == 0:
            return
        self.total += count
        reach = self.size + max(self.periods, default=1) - 1
        if count > reach:
            # Older trades reach neither the visible window nor the SMAs over it (a first load
            # of a long tape): restart the SMAs on the tail, O(window) instead of O(count).
            ts, prices, sizes = ts[-reach:], prices[-reach:], sizes[-reach:]
            count = reach
            self._smas = [StreamingSMA(p) for p in self.periods]
        rows: list[Sequence[float]] = [prices, sizes]
        for sma in self._smas:  # O(1) per trade
            update = sma.update
            rows.append([update(p) for p in prices])
        keep = min(count, self.size)
        block = np.array([row[count - keep :] for row in rows], dtype=np.float64)
        times = np.maximum.accumulate(np.asarray(ts, dtype=np.int64))[count - keep :]
        np.maximum(times, self._last_ts, out=times)
        self._last_ts = int(times[-1])
        if self._end + keep > len(self._ts):
            self._compact(self.size - keep)
        end = self._end + keep
        self._ts[self._end : end] = times
        self._cols[:, self._end : end] = block
        self._end = end
        self._start = max(self._start, end - self.size)

    def _compact(self, survivors: int) -> None:
        """Move the newest ``survivors`` trades to the front of the buffers."""
        survivors = min(survivors, len(self))
        first = self._end - survivors
        self._ts[:survivors] = self._ts[first : self._end]
        self._cols[:, :survivors] = self._cols[:, first : self._end]
        self._start, self._end = 0, survivors

    def times(self) -> Ints:
        """Trade times (µs UTC, non-decreasing), oldest first; a copy."""
        return self._ts[self._start : self._end].copy()

    def sizes(self) -> Floats:
        return self._cols[1, self._start : self._end].copy()

    def price_and_smas(self) -> Floats:
        """Shape ``(1 + len(periods), len(self))``: the price row, then one row per SMA
        (NaN until that SMA has seen ``period`` trades); a contiguous copy."""
        rows = [0, *range(2, 2 + len(self._smas))]
        return self._cols[rows, self._start : self._end]


def bucket_width(span_us: int, target: int) -> int:
    """The smallest round width that cuts ``span_us`` into at most ``target`` buckets."""
    for width in BUCKET_WIDTHS_US:
        if span_us <= width * target:
            return width
    day = BUCKET_WIDTHS_US[-1]
    return -(-span_us // (target * day)) * day


def volume_buckets(ts: Ints, sizes: Floats, target: int = 60) -> tuple[Ints, Floats]:
    """Traded size per time bucket over ``ts`` (µs, non-decreasing): the mid time and volume
    of every bucket from the first trade's to the last's, empty ones included (evenly spaced
    bars), at most ``target + 1`` of them."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    width = bucket_width(int(ts[-1] - ts[0]), target)
    keys = ts // width
    first = int(keys[0])
    volumes = np.bincount(keys - first, weights=sizes).astype(np.float64, copy=False)
    mids = (np.arange(len(volumes), dtype=np.int64) + first) * width + width // 2
    return mids, volumes
