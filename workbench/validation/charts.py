"""Static SVG charts for a validation report: equity and drawdown over time, with the
out-of-sample segments shaded, and the distribution of per-bar returns.

Drawn in Python with no plotting library, like the widgets' snapshots
(:mod:`workbench.notebook.widgets.snapshot`), with their tick rules
(:mod:`workbench.core.axes`) and SVG building blocks (:mod:`workbench.core.svg`: the
document, header, plot panel and ``<img>``): pure functions from arrays to SVG text, so
``report.html`` needs no JavaScript and a test can parse and check every element. Elements
carry classes (``line``, ``segment``, ``bar``, ``tick``, ...) for exactly that. In a notebook,
show a chart with :func:`as_img`: JupyterLab renders a ``data:`` URI image in an untrusted
notebook, where an inline ``<svg>`` is dropped.

Long series are decimated (:func:`decimate`) to each bucket's first, lowest and highest
point, so a line of millions of bars has a few thousand points and still shows every
extreme: the deepest drawdown is on the chart whatever the series' length.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from workbench.core import axes, svg
from workbench.core.axes import tick_labels
from workbench.core.svg import INK, MUTED, WIDTH, Panel, document, esc, header, no_data
from workbench.errors import UsageError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

MAX_POINTS: Final = 2_000
"""The most points :func:`decimate` keeps of one line: about 3 a pixel column of a chart."""

HEADER_PX: Final = 24
LINE_COLOR: Final = "#1f4e79"
DRAWDOWN_COLOR: Final = "#c62828"
BAR_COLOR: Final = MUTED
MEAN_COLOR: Final = "#ef6c00"
SEGMENT_FILLS: Final = ("#fff3e0", "#e3f2fd", "#f3e5f5", "#e8f5e9")

_DAY_US: Final = 86_400_000_000
_HOUR_US: Final = 3_600_000_000
_HOUR_STEPS: Final = (1, 2, 3, 6, 12)
_DAY_STEPS: Final = (1, 2, 7, 14)
_MONTH_STEPS: Final = (1, 2, 3, 6, 12, 24, 60, 120, 240, 600)


def _points(xs: Floats, ys: Floats) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True))


def as_img(chart: str, alt: str) -> str:
    """``chart`` as a report's ``<img>`` (class ``wb-validation-chart``): see
    :func:`workbench.core.svg.as_img`."""
    return svg.as_img(chart, alt, "wb-validation-chart")


def percent_labels(values: Sequence[float]) -> list[str]:
    """Fractions as percent labels (0.05 → ``5%``), with as many decimals as the step needs."""
    shown = np.round(np.asarray(values, dtype=np.float64) * 100.0, 10)
    places = axes.decimals(shown)
    # + 0.0 turns -0.0 into 0.0, so the zero tick never reads "-0%"
    return [f"{float(v) + 0.0:,.{places}f}%" for v in shown]


def _percent(value: float) -> str:
    """One statistic in percent, to 3 significant digits."""
    return f"{value * 100.0 + 0.0:.3g}%"


def _two_places(value: float) -> str:
    """Two decimals, and never "-0.00" (a skewness of -0.001 reads as 0.00)."""
    return f"{round(value, 2) + 0.0:.2f}"


# -- decimation -------------------------------------------------------------------------------


def decimate(values: Floats, max_points: int = MAX_POINTS) -> Ints:
    """Indices (ascending) of the points to draw of ``values``: all of them if there are at
    most ``max_points``, else the first, lowest and highest point of each of about
    ``max_points / 2`` equal runs, plus the last point. A line through them has the
    series' envelope, so no spike or trough is lost. NaNs are never the lowest or highest."""
    if max_points < 4:
        raise UsageError(f"max_points must be at least 4, got {max_points!r}")
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    # the runs' first points cost a third of the budget: they keep the line's shape where a
    # run's extremes sit at its ends (a trend), and make the count ≤ 3 per run + 1
    size = math.ceil(n / ((max_points - 1) // 3))
    runs = math.ceil(n / size)
    padded = np.empty(runs * size, dtype=np.float64)
    padded[:n] = values
    padded[n:] = np.nan  # the last run's padding: never picked (nanargmin skips NaN)
    table = padded.reshape(runs, size)
    starts = np.arange(runs, dtype=np.int64) * size
    finite = np.isfinite(table)
    # an all-NaN run has no extreme: keep its first point (a gap in the line)
    low = np.where(finite, table, np.inf).argmin(axis=1)
    high = np.where(finite, table, -np.inf).argmax(axis=1)
    keep = np.concatenate((starts, starts + low, starts + high, [n - 1]))
    return np.unique(np.minimum(keep, n - 1)).astype(np.int64)


# -- time axis --------------------------------------------------------------------------------


def time_ticks(first_us: int, last_us: int, width_px: float) -> dict[int, str]:
    """Round UTC times inside ``[first_us, last_us]`` with their labels, as many as fit in
    ``width_px``: :func:`axes.time_ticks` within one UTC day, else whole hours, days, months
    or years (a backtest spans months; ``axes`` steps stop at a day)."""
    if axes.time_format(first_us, last_us) == axes.TIME_FORMAT:
        count = max(2, int(width_px // (axes.label_px("00:00:00.000") + 16)))
        return axes.time_ticks(first_us, last_us, min(count, 8), clear=axes.CLEAR)
    span = max(last_us - first_us, 1)
    lo = first_us + math.ceil(axes.CLEAR * span)
    hi = last_us - math.ceil(axes.CLEAR * span)
    for hours in _HOUR_STEPS:
        ticks = _fixed_ticks(lo, hi, hours * _HOUR_US, "%m-%d %H:%M", width_px)
        if ticks is not None:
            return ticks
    for days in _DAY_STEPS:
        ticks = _fixed_ticks(lo, hi, days * _DAY_US, "%Y-%m-%d", width_px)
        if ticks is not None:
            return ticks
    for months in _MONTH_STEPS:
        ticks = _month_ticks(lo, hi, months, width_px)
        if ticks is not None:
            return ticks
    return {lo: _utc(lo, "%Y")}


def _utc(us: int, fmt: str) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime(fmt)


def _fits(count: int, fmt: str, width_px: float) -> bool:
    sample = dt.datetime(2000, 12, 28, 23, 59, tzinfo=dt.UTC).strftime(fmt)
    return count * (axes.label_px(sample) + 16) <= width_px


def _fixed_ticks(lo: int, hi: int, step: int, fmt: str, width_px: float) -> dict[int, str] | None:
    start = -(-lo // step) * step
    count = (hi - start) // step + 1 if hi >= start else 0
    if not _fits(count, fmt, width_px):
        return None
    return {us: _utc(us, fmt) for us in range(start, hi + 1, step)}


def _month_ticks(lo: int, hi: int, months: int, width_px: float) -> dict[int, str] | None:
    fmt = "%Y" if months >= 12 else "%Y-%m"
    begin = dt.datetime.fromtimestamp(lo / 1e6, dt.UTC)
    index = begin.year * 12 + begin.month - 1
    if begin != dt.datetime(begin.year, begin.month, 1, tzinfo=dt.UTC):
        index += 1  # the first month start at or after lo
    index = -(-index // months) * months
    ticks: dict[int, str] = {}
    while index < 12 * 10_000:  # datetime's last year is 9999
        moment = dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)
        us = round(moment.timestamp() * 1e6)
        if us > hi:
            break
        ticks[us] = moment.strftime(fmt)
        if not _fits(len(ticks), fmt, width_px):
            return None  # stop early: a month step over decades would make hundreds
        index += months
    return ticks


# -- equity and drawdown ----------------------------------------------------------------------


@dataclass(frozen=True)
class EquityLayout:
    """Where :func:`equity_svg` draws: the two panels, sharing one time domain, and the
    y axes' ticks and labels."""

    equity: Panel
    drawdown: Panel
    equity_ticks: list[float]
    equity_labels: list[str]
    drawdown_ticks: list[float]
    """Ticks of the drawn values: ``-depth``, 0 at the top of the panel."""
    drawdown_labels: list[str]
    times: dict[int, str]


def _equity_inputs(times_us: Ints, equity: Floats, drawdown: Floats) -> tuple[Ints, Floats, Floats]:
    times = np.asarray(times_us, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    depth = np.abs(np.asarray(drawdown, dtype=np.float64))
    if not len(times) == len(values) == len(depth):
        raise UsageError(
            f"times_us, equity and drawdown must have one value a bar, got {len(times)}, "
            f"{len(values)} and {len(depth)}"
        )
    return times, values, depth


def equity_layout(times_us: Ints, equity: Floats, drawdown: Floats) -> EquityLayout:
    """The panels and ticks :func:`equity_svg` uses for these series (needs 2+ bars)."""
    times, values, depth = _equity_inputs(times_us, equity, drawdown)
    if len(times) < 2:
        raise UsageError(f"an equity chart needs at least 2 bars, got {len(times)}")
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    pad = (high - low) * 0.05 or max(abs(high) * 1e-3, 1e-9)
    equity_ticks = axes.ticks_within(low - pad, high + pad, 6)
    equity_labels = tick_labels(equity_ticks)
    deepest = float(np.nanmax(depth)) if np.isfinite(depth).any() else 0.0
    # a flat run still gets a readable axis: 0 to 1%
    bottom, depth_ticks = axes.ticks_from_zero(max(deepest, 0.01), 3)
    drawdown_ticks = [-t + 0.0 for t in depth_ticks]
    drawdown_labels = percent_labels(drawdown_ticks)

    first, last = int(times[0]), int(times[-1])
    last = max(last, first + 1)
    widest = max([*equity_labels, *drawdown_labels], key=len)
    left = axes.label_px(widest) + axes.TITLE_MARGIN_PX
    width = WIDTH - left - (axes.label_px("0000-00-00") // 2 + 8)
    ticks = time_ticks(first, last, width)
    eq = Panel(left, HEADER_PX + 8, width, 220, first, last, low - pad, high + pad)
    dd = Panel(left, eq.bottom + 10, width, 110, first, last, -bottom, 0.0)
    return EquityLayout(eq, dd, equity_ticks, equity_labels, drawdown_ticks, drawdown_labels, ticks)


def equity_svg(
    times_us: Ints,
    equity: Floats,
    drawdown: Floats,
    segments: Sequence[tuple[int, int, str]] = (),
) -> str:
    """Equity (a line) over drawdown (an area down from 0, ticks in percent) on one time
    axis, with each of ``segments`` — ``(start_us, end_us, label)``, e.g. the out-of-sample
    folds and the holdout — shaded on both panels and labelled. ``drawdown`` is the depth
    below the running peak as a fraction (0.1 = 10% below); the negative convention of
    :func:`workbench.core.metrics.drawdown` is drawn the same. NaNs leave gaps."""
    times, values, depth = _equity_inputs(times_us, equity, drawdown)
    title = "equity and drawdown"
    if len(times) < 2 or not np.isfinite(values).any():
        return no_data(300, title, "equity", "no equity to show")
    layout = equity_layout(times, values, depth)
    eq, dd = layout.equity, layout.drawdown
    deepest = float(np.nanmax(depth)) if np.isfinite(depth).any() else 0.0
    note = f"{len(times):,} bars · max drawdown {_percent(deepest)}"

    parts = [header("equity", note)]
    parts += [
        _segment(panel, segment, i) for panel in (eq, dd) for i, segment in enumerate(segments)
    ]
    parts += [_segment_label(eq, segment) for segment in segments]
    tick_us = [float(t) for t in layout.times]
    parts += [eq.y_ticks(layout.equity_ticks, layout.equity_labels, "equity"), eq.x_grid(tick_us)]
    parts += [_line(eq, times, values, "equity", LINE_COLOR), eq.frame()]
    parts += [dd.y_ticks(layout.drawdown_ticks, layout.drawdown_labels, "drawdown")]
    parts += [dd.x_grid(tick_us), _drawdown(dd, times, depth), dd.frame()]
    parts.append(dd.x_ticks(tick_us, list(layout.times.values())))
    return document(int(dd.bottom + 26), "".join(parts), title)


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in ``mask``: the pieces of a line with gaps."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _line(panel: Panel, times: Ints, values: Floats, name: str, color: str) -> str:
    keep = decimate(values)
    t, v = times[keep].astype(np.float64), values[keep]
    xs, ys = panel.xs(t), panel.ys(v)
    return "".join(
        f'<polyline class="line {name}" points="{_points(xs[a:b], ys[a:b])}" fill="none" '
        f'stroke="{color}" stroke-width="1.5"/>'
        for a, b in _runs(np.isfinite(v))
    )


def _drawdown(panel: Panel, times: Ints, depth: Floats) -> str:
    keep = decimate(depth)
    t, v = times[keep].astype(np.float64), -depth[keep]
    xs, ys = panel.xs(t), panel.ys(v)
    zero = panel.y(0.0)
    parts = []
    for a, b in _runs(np.isfinite(v)):
        line = _points(xs[a:b], ys[a:b])
        parts.append(
            f'<polygon class="area drawdown" points="{xs[a]:.1f},{zero:.1f} {line} '
            f'{xs[b - 1]:.1f},{zero:.1f}" fill="{DRAWDOWN_COLOR}" fill-opacity="0.2" '
            f'stroke="none"/><polyline class="line drawdown" points="{line}" fill="none" '
            f'stroke="{DRAWDOWN_COLOR}" stroke-width="1.2"/>'
        )
    return "".join(parts)


def _segment_x(panel: Panel, segment: tuple[int, int, str]) -> tuple[float, float] | None:
    """The pixel span of a segment, clipped to the panel; None if it is outside."""
    start, end = sorted((float(segment[0]), float(segment[1])))
    start, end = max(start, panel.x0), min(end, panel.x1)
    if end < start:
        return None
    return panel.x(start), panel.x(end)


def _segment(panel: Panel, segment: tuple[int, int, str], index: int) -> str:
    span = _segment_x(panel, segment)
    if span is None:
        return ""
    fill = SEGMENT_FILLS[index % len(SEGMENT_FILLS)]
    return (
        f'<rect class="segment" x="{span[0]:.2f}" y="{panel.top:.1f}" '
        f'width="{span[1] - span[0]:.2f}" height="{panel.height:.1f}" fill="{fill}">'
        f"<title>{esc(segment[2])}</title></rect>"
    )


def _segment_label(panel: Panel, segment: tuple[int, int, str]) -> str:
    span = _segment_x(panel, segment)
    if span is None:
        return ""
    return (
        f'<text class="segment-label" x="{span[0] + 3:.1f}" y="{panel.top + 12:.1f}" '
        f'font-size="10" fill="{MUTED}">{esc(segment[2])}</text>'
    )


# -- returns histogram ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnsSummary:
    """What the histogram's header says of the finite returns."""

    count: int
    mean: float
    std: float
    """Sample standard deviation (ddof=1), as :mod:`workbench.core.metrics` uses."""
    skewness: float
    kurtosis: float
    """Plain (not excess) moment kurtosis, 3 for a normal: :mod:`workbench.validation.stats`'
    convention."""


def returns_summary(returns: Floats) -> ReturnsSummary:
    """Count, mean, std, skewness and kurtosis of the finite returns (NaN if undefined)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = len(r)
    if n == 0:
        return ReturnsSummary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(r.mean())
    centred = r - mean
    m2 = float(np.mean(centred**2))
    std = float(np.std(r, ddof=1)) if n > 1 else math.nan
    if m2 == 0.0:
        return ReturnsSummary(n, mean, std, math.nan, math.nan)
    skewness = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    return ReturnsSummary(n, mean, std, skewness, kurtosis)


@dataclass(frozen=True)
class HistogramLayout:
    """Where :func:`returns_histogram_svg` draws: the panel, ``np.histogram``'s counts and
    edges of the finite returns, and the axes' ticks."""

    panel: Panel
    counts: Ints
    edges: Floats
    x_ticks: list[float]
    y_ticks: list[float]


def histogram_layout(returns: Floats, bins: int = 50) -> HistogramLayout | None:
    """The layout :func:`returns_histogram_svg` uses; None if no two finite returns differ."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise UsageError(f"bins must be an integer >= 1, got {bins!r}")
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) == 0 or float(r.min()) == float(r.max()):
        return None
    counts, edges = np.histogram(r, bins=bins)
    # 0 is always on the axis: its line is the reference the mean is read against
    x0, x1 = min(float(edges[0]), 0.0), max(float(edges[-1]), 0.0)
    top, y_ticks = axes.ticks_from_zero(float(counts.max()), 4)
    left = axes.label_px(max(tick_labels(y_ticks), key=len)) + axes.TITLE_MARGIN_PX
    half = axes.label_px("-00.00%") // 2 + 8
    panel = Panel(left, HEADER_PX + 16, WIDTH - left - half, 220, x0, x1, 0.0, top)
    x_ticks = axes.ticks_within(x0, x1, 7, clear=axes.CLEAR)
    return HistogramLayout(panel, counts.astype(np.int64), edges, x_ticks, y_ticks)


def returns_histogram_svg(returns: Floats, bins: int = 50) -> str:
    """The distribution of per-bar returns: ``bins`` bars (``np.histogram`` of the finite
    returns), lines at 0 and at the mean, x ticks in percent, and the count, mean, std,
    skewness and kurtosis in the header. An empty or constant series says so instead."""
    title = "distribution of per-bar returns"
    layout = histogram_layout(returns, bins)
    summary = returns_summary(returns)
    if layout is None:
        if summary.count == 0:
            message = "no returns to show"
        else:
            noun = "return" if summary.count == 1 else "returns"
            message = f"all returns equal {_percent(summary.mean)} ({summary.count:,} {noun})"
        return no_data(280, title, "per-bar returns", message)
    panel = layout.panel
    note = (
        f"n {summary.count:,} · mean {_percent(summary.mean)} · std {_percent(summary.std)}"
        f" · skewness {_two_places(summary.skewness)} · kurtosis {_two_places(summary.kurtosis)}"
    )
    parts = [header("per-bar returns", note)]
    parts.append(panel.y_ticks(layout.y_ticks, tick_labels(layout.y_ticks), "bars"))
    lefts = panel.xs(layout.edges[:-1])
    rights = panel.xs(layout.edges[1:])
    tops = panel.ys(layout.counts.astype(np.float64))
    for x0, x1, y, count in zip(
        lefts.tolist(), rights.tolist(), tops.tolist(), layout.counts.tolist(), strict=True
    ):
        gap = min(1.0, (x1 - x0) * 0.1)  # a hairline between bars, never wider than a bar
        parts.append(
            f'<rect class="bar" x="{x0:.2f}" y="{y:.2f}" width="{x1 - x0 - gap:.2f}" '
            f'height="{panel.bottom - y:.2f}" fill="{BAR_COLOR}" data-count="{count}"/>'
        )
    # the two labels face away from each other: the mean is usually close to 0
    right = summary.mean >= 0.0
    parts.append(_vertical(panel, 0.0, "zero", INK, "0", dash=False, right=not right))
    parts.append(_vertical(panel, summary.mean, "mean", MEAN_COLOR, "mean", dash=True, right=right))
    parts.append(panel.frame())
    parts.append(panel.x_ticks(layout.x_ticks, percent_labels(layout.x_ticks)))
    cx = panel.left + panel.width / 2
    parts.append(
        f'<text class="axis-title" x="{cx:.1f}" y="{panel.bottom + 32:.1f}" '
        f'text-anchor="middle" fill="{INK}">return per bar</text>'
    )
    return document(int(panel.bottom + 42), "".join(parts), title)


def _vertical(
    panel: Panel, value: float, name: str, color: str, label: str, *, dash: bool, right: bool
) -> str:
    """A vertical line at ``value`` across the panel, labelled above it on one side."""
    x = panel.x(value)
    style = ' stroke-dasharray="4 3"' if dash else ""
    label_x, anchor = (x + 3, "start") if right else (x - 3, "end")
    return (
        f'<line class="{name}" x1="{x:.2f}" x2="{x:.2f}" y1="{panel.top:.1f}" '
        f'y2="{panel.bottom:.1f}" stroke="{color}" stroke-width="1.2"{style}/>'
        f'<text class="{name}-label" x="{label_x:.1f}" y="{panel.top - 4:.1f}" '
        f'text-anchor="{anchor}" font-size="10" fill="{color}">{esc(label)}</text>'
    )
