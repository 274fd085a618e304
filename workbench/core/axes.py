"""Chart arithmetic the live widgets share with their static snapshots: round ticks, margins
wide enough for the tick labels, time formats, the digits a price needs and depth curves.

Pure functions of the data on screen, so the kernel decides every tick, label width and format
(and a test can check them) instead of the browser guessing from a domain it may not have yet.
The static charts' look and SVG building blocks are in :mod:`workbench.core.svg`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from workbench.events import Level

Floats = npt.NDArray[np.float64]

TIME_FORMAT = "%H:%M:%S"
DATE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""Time ticks are labelled in UTC, by the kernel (the browser's time zone plays no part)."""

CHAR_PX = 7
"""Width of one tick-label character (bqplot's 10-11 px sans-serif digits are 6-7 px)."""
TITLE_MARGIN_PX = 42
"""Left margin beyond the widest tick label: tick, gap and the rotated axis title (offset 21 px
from the axis) with the title's glyph height and a few px to spare for the fonts' metrics,
which differ between machines (36 px clipped the title on a freshly installed Chromium)."""

CLEAR = 0.05
"""No x tick in the first or last 5% of a chart: the label centred on it would run into the
lowest y tick label or past the figure's edge (half a label is ~30 px, 5% of a plot 600 px
or wider)."""

MAX_DECIMALS = 8

_DAY_US = 86_400_000_000


def decimals(prices: Floats) -> int:
    """Digits after the point that show every price exactly (at most ``MAX_DECIMALS``)."""
    if len(prices) == 0:
        return 0
    for digits in range(MAX_DECIMALS):
        scaled = prices * 10.0**digits
        # relative tolerance: a few ulps of the scaled price, far below one digit's step
        if np.abs(scaled - np.rint(scaled)).max() <= 1e-12 * np.abs(scaled).max():
            return digits
    return MAX_DECIMALS


def depth_curve(levels: list[Level]) -> tuple[Floats, Floats]:
    """Prices best first and the cumulative size available up to each: one depth-chart side."""
    if not levels:
        return np.zeros(0), np.zeros(0)
    table = np.array(levels, dtype=np.float64)
    return table[:, 0].copy(), np.cumsum(table[:, 1])


def nice_step(span: float, count: int) -> float:
    """The 1-2-5 step (times a power of ten) that cuts ``span`` into about ``count`` parts."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if raw <= factor * power * (1 + 1e-9):
            return factor * power
    return 10.0 * power


def ticks_from_zero(top: float, count: int = 3) -> tuple[float, list[float]]:
    """An axis from 0 that holds ``top``: its end (a whole number of steps) and its ticks."""
    step = nice_step(top, count)
    steps = max(1, math.ceil(top / step - 1e-9))
    return steps * step, [round(i * step, 12) for i in range(steps + 1)]


def steady_ticks_from_zero(
    shown: tuple[float, list[float]], top: float, count: int = 3
) -> tuple[float, list[float]]:
    """``ticks_from_zero``, but the axis ``shown`` stays while ``top`` is in its upper half:
    a depth that wobbles from frame to frame leaves the axis still instead of jumping."""
    if shown[0] / 2 < top <= shown[0]:
        return shown
    return ticks_from_zero(top, count)


def ticks_within(
    low: float, high: float, count: int = 5, clear: float = 0.0, keep: float = 0.0
) -> list[float]:
    """Round ticks inside ``[low, high]``, about ``count`` of them, none in the first or last
    ``clear`` of the range (see ``CLEAR``). ``keep``, the step shown so far, stays while it
    gives 2 to ``2 * count`` ticks: prices that wobble leave the ticks where they are."""
    if keep > 0:
        ticks = _steps_within(low, high, keep, clear)
        if 2 <= len(ticks) <= 2 * count:
            return ticks
    return _steps_within(low, high, nice_step(high - low, count), clear)


def _steps_within(low: float, high: float, step: float, clear: float) -> list[float]:
    first = math.ceil((low + clear * (high - low)) / step - 1e-9)
    last = math.floor((high - clear * (high - low)) / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def time_format(first_us: int, last_us: int) -> str:
    """``HH:MM:SS``, with the date when the window spans more than one UTC day."""
    return TIME_FORMAT if first_us // _DAY_US == last_us // _DAY_US else DATE_TIME_FORMAT


def label_px(text: str) -> int:
    """About how wide ``text`` is as a tick label."""
    return CHAR_PX * len(text)


_TIME_STEPS_US = tuple(
    round(s * 1_000_000)
    for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30)
) + tuple(m * 60_000_000 for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440))


def time_ticks(first_us: int, last_us: int, count: int = 8, clear: float = 0.0) -> dict[int, str]:
    """Round UTC times inside ``[first_us, last_us]`` (µs), about ``count``, each with its
    label: ``HH:MM:SS`` (milliseconds for sub-second steps), the date too when the window
    spans days. None in the first or last ``clear`` of the span (see ``CLEAR``)."""
    span = max(last_us - first_us, 1)
    step = next((s for s in _TIME_STEPS_US if span / s <= count), _TIME_STEPS_US[-1])
    fmt = time_format(first_us, last_us)
    start = -(-(first_us + math.ceil(clear * span)) // step) * step
    ticks = {}
    for us in range(start, last_us - math.ceil(clear * span) + 1, step):
        moment = dt.datetime.fromtimestamp(us / 1e6, dt.UTC)
        label = moment.strftime(fmt)
        if step < 1_000_000:
            label += f".{moment.microsecond // 1000:03d}"
        ticks[us] = label
    return ticks


def plain(value: float, digits: int) -> str:
    """A number with thousands separators and ``digits`` decimals: never an exponent."""
    return f"{value:,.{digits}f}"


def tick_labels(ticks: Sequence[float], digits: int = 0) -> list[str]:
    """Labels for round ticks: as many decimals as the step needs (at least ``digits``)."""
    places = max(digits, decimals(np.array(ticks, dtype=np.float64)))
    return [plain(t, places) for t in ticks]
