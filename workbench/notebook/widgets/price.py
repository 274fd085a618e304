"""The price widget: last price, a price line with SMA overlays, and volume bars.

New trades come from the feed's in-memory tape through a cursor (``recent_trades``), so a
frame reads only what arrived since the last one and never queries DuckDB. They go through a
:class:`~workbench.core.tradewindow.TradeWindow`: O(1) per trade for the SMAs, at most
``window`` points on screen. The price and SMA lines are one bqplot mark with one row per
line, so a frame sends the x array once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bqplot  # type: ignore[import-untyped, unused-ignore]
import ipywidgets  # type: ignore[import-untyped, unused-ignore]
import numpy as np

from workbench.core import axes
from workbench.core.axes import decimals
from workbench.core.tradewindow import Floats, Ints, TradeWindow, volume_buckets
from workbench.events import Trade
from workbench.feeds.protocol import AnyFeed
from workbench.notebook.widgets import snapshot
from workbench.notebook.widgets.base import FeedWidget, assign, escape, held
from workbench.notebook.widgets.orderbook import SIZE_FORMAT

PRICE_COLOR = "#1f4e79"
SMA_COLORS = ("#ff8f00", "#8e24aa", "#00897b", "#6d4c41", "#e91e63")
VOLUME_COLOR = "#78909c"
VOLUME_BARS = 60
"""Volume buckets across the window at most (about): round widths, see ``volume_buckets``."""


class PriceWidget(FeedWidget):
    """Live price chart of ``symbol`` over its last ``window`` trades, at ``rate`` Hz."""

    def __init__(
        self,
        feed: AnyFeed,
        symbol: str,
        *,
        sma: Sequence[int] = (20, 50),
        window: int = 2000,
        rate: float = 10.0,
        autostart: bool = True,
    ) -> None:
        self._watch(feed, symbol)
        self.trades = TradeWindow(window, sma)
        self.window = window
        self.sma = self.trades.periods
        self.missed_trades = 0
        """Trades that left the feed's tape before a frame could read them (none at normal
        rates: the tape holds thousands per symbol and frames come every 100 ms)."""
        self._cursor = 0
        self._running_shown: bool | None = None
        self._last: Trade | None = None
        self._digits = 0

        # Time is µs on a linear scale whose range and labelled ticks the kernel sets: both
        # panels get exactly the same domain (bqplot would give each figure its own, from its
        # own marks), and labels are UTC whatever the browser's time zone.
        self.time_scale = x = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        y = bqplot.LinearScale()
        self.volume_scale = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        names = ["price", *(f"SMA {n}" for n in self.sma)]
        colors = [PRICE_COLOR, *(SMA_COLORS[i % len(SMA_COLORS)] for i in range(len(self.sma)))]
        self._colors, self._names = colors, names
        # The legend is HTML above the chart: bqplot's sits inside the plot, over the data.
        self.lines = bqplot.Lines(
            scales={"x": x, "y": y}, colors=colors[:1], labels=names[:1], stroke_width=1.5
        )
        self.volume_bars = bqplot.Bars(
            scales={"x": x, "y": self.volume_scale}, colors=[VOLUME_COLOR], padding=0.1
        )
        self.price_axis = bqplot.Axis(scale=y, side="left", label="price", tick_format=",.0f")
        self.volume_axis = bqplot.Axis(
            scale=self.volume_scale,
            side="left",
            label="volume",
            tick_format=SIZE_FORMAT,
            tick_values=np.array([0.0, 1.0]),
        )
        # Both panels share the x scale, one left and right margin and the same width, so a
        # bar sits exactly under the trades it adds up.
        self.time_axes = [bqplot.Axis(scale=x, tick_values=np.array([0.0])) for _ in range(2)]
        # No marks until the first data: bqplot draws an empty mark as d="null" and places
        # its curve labels at an undefined y, each a console error.
        self.price_chart = bqplot.Figure(
            marks=[],
            display_toolbar=False,
            axes=[self.time_axes[0], self.price_axis],
            fig_margin=_margin(""),
            layout=ipywidgets.Layout(height="260px", width="100%"),
        )
        self.price_chart.add_class("wb-price-chart")
        self.volume_chart = bqplot.Figure(
            marks=[],
            display_toolbar=False,
            axes=[self.time_axes[1], self.volume_axis],
            fig_margin=_margin(""),
            layout=ipywidgets.Layout(height="120px", width="100%"),
        )
        self.volume_chart.add_class("wb-volume-chart")
        self.last_label = ipywidgets.HTML("last —")
        self.last_label.add_class("wb-last-price")
        self.legend = ipywidgets.HTML(_legend_html(names, colors))
        self.legend.add_class("wb-legend")
        title = ipywidgets.HTML(f"<b>{escape(symbol)}</b> · {escape(feed.name)}")
        header = ipywidgets.HBox(
            [title, self.last_label, self.legend],
            layout=ipywidgets.Layout(grid_gap="12px", align_items="baseline"),
        )
        super().__init__(
            [header, self.price_chart, self.volume_chart],
            css_class="wb-price",
            name=f"price-{feed.name}-{symbol}",
            rate=rate,
            autostart=autostart,
        )

    def _detached(self) -> Sequence[Any]:
        return (self.lines, self.volume_bars)

    def _snapshot(self) -> snapshot.Bundle:
        window = self.trades
        shown = self._running_shown
        return snapshot.price_snapshot(
            snapshot.PriceFrame(
                self.symbol,
                self.feed.name,
                window.times(),
                window.price_and_smas(),
                self._names,
                self._colors,
                window.sizes(),
                self._last,
                running=self.feed.running if shown is None else shown,
                volume_color=VOLUME_COLOR,
                volume_bars=VOLUME_BARS,
            )
        )

    def _render(self) -> None:
        running = self.feed.running
        cursor, new = self.feed.recent_trades(self.symbol, self._cursor)
        if self._cursor:  # on the first read, older trades were simply before our time
            self.missed_trades += cursor - self._cursor - len(new)
        self._cursor = cursor
        if not new and running == self._running_shown:
            return
        self._running_shown = running
        window = self.trades
        window.extend([t.ts for t in new], [t.price for t in new], [t.size for t in new])
        self._last = new[-1] if new else self._last
        scales = (
            self.price_axis,
            self.volume_axis,
            *self.time_axes,
            self.volume_scale,
            self.time_scale,
        )
        charts = (self.price_chart, self.volume_chart, *scales)
        with held(self.lines, self.volume_bars, self.last_label, *charts):
            if len(window) >= 2 and new:  # bqplot squeezes a 1-point 2-D array: wait for 2
                self._show_window(window.times(), window.price_and_smas(), window.sizes())
            self.last_label.value = _last_html(self._last, self._digits, running)

    def _show_window(self, times: Ints, rows: Floats, sizes: Floats) -> None:
        # A line whose newest point is NaN (an SMA still warming up) puts its label at an
        # undefined y: show each SMA from its first value on.
        ready = [0, *(i for i in range(1, len(rows)) if np.isfinite(rows[i, -1]))]
        assign(
            self.lines,
            colors=[self._colors[i] for i in ready],
            labels=[self._names[i] for i in ready],
        )
        # float64 (exact for µs until 2255): bqplot sends an int64 array as int32, overflowed
        self.lines.x, self.lines.y = times.astype(np.float64), rows[ready]
        self._digits = digits = decimals(rows[0])
        low, high = float(np.nanmin(rows[ready])), float(np.nanmax(rows[ready]))
        widest = max((f"{v:,.{digits}f}" for v in (low, high)), key=len)
        assign(self.price_axis, tick_format=f",.{digits}f", label_offset=_label_offset(widest))
        bucket_x, volume = volume_buckets(times, sizes, VOLUME_BARS)
        first, last = int(times[0]), int(times[-1])
        if len(volume) >= 2:  # the whole of the first and last bars is on screen
            half = int(bucket_x[1] - bucket_x[0]) // 2
            first, last = min(first, int(bucket_x[0]) - half), max(last, int(bucket_x[-1]) + half)
        assign(self.time_scale, min=float(first), max=float(max(last, first + 1)))
        ticks = axes.time_ticks(first, last, clear=axes.CLEAR)
        for axis in self.time_axes:
            _set_ticks(axis, ticks)
        margin = _margin(widest, axes.time_format(first, last))
        for chart in (self.price_chart, self.volume_chart):
            assign(chart, fig_margin=margin)
        if not self.price_chart.marks:
            self.price_chart.marks = [self.lines]
        if len(volume) >= 2:  # a Bars mark first drawn with one bar never recovers
            self.volume_bars.x = bucket_x.astype(np.float64)
            self.volume_bars.y = volume
            top, volume_ticks = axes.ticks_from_zero(float(volume.max()))
            assign(self.volume_scale, max=top)
            assign(self.volume_axis, tick_values=np.array(volume_ticks))
            if not self.volume_chart.marks:
                self.volume_chart.marks = [self.volume_bars]


def _set_ticks(axis: Any, ticks: dict[int, str]) -> None:
    """Show ``ticks`` (µs: label) on ``axis``. The labels go first, in a message of their own
    and with those of the ticks on screen kept: bqplot redraws the axis when its values change
    with the labels it has at that moment (a d3 transition keeps that formatter), and a tick
    it has no label for shows as a raw number (1.7965e+15)."""
    labels = {str(us): text for us, text in ticks.items()}
    values = np.array(list(ticks), dtype=np.float64)
    if np.array_equal(axis.tick_values, values) and labels.items() <= axis.tick_labels.items():
        return
    shown = {str(int(v)) for v in axis.tick_values} & axis.tick_labels.keys()
    axis.tick_labels = {**{k: axis.tick_labels[k] for k in shown}, **labels}
    axis.send_state("tick_labels")  # now: ahead of the held frame's message with the values
    axis.tick_values = values


def _label_offset(widest_tick: str) -> str:
    """The axis title just beyond the widest tick label (tick 6 px, gap 3 px, then 12 px)."""
    return f"{axes.label_px(widest_tick) + 21}px"


def _margin(widest_tick: str, time_format: str = axes.TIME_FORMAT) -> dict[str, int]:
    """Room on the left for the price ticks and the title, on the right for half a time label
    (the last tick's label is centred on it)."""
    widest = max(widest_tick, "00,000", key=len)  # the volume ticks fit too
    sample = time_format.replace("%Y", "0000").replace("%", "")
    return {
        "top": 10,
        "bottom": 30,
        "left": axes.label_px(widest) + axes.TITLE_MARGIN_PX,
        "right": axes.label_px(sample) // 2 + 8,
    }


def _legend_html(names: list[str], colors: list[str]) -> str:
    return " ".join(
        f'<span class="wb-legend-item" style="white-space:nowrap">'
        f'<span style="color:{color};font-weight:bold">━━</span> {escape(name)}</span>'
        for name, color in zip(names, colors, strict=True)
    )


def _last_html(last: Trade | None, digits: int, running: bool) -> str:
    """The newest trade, its price with the decimals of the axis (or more, if it needs them)."""
    stopped = "" if running else " <i>feed not running</i>"
    if last is None:
        return f"last —{stopped}"
    color = "#2e7d32" if last.side == "buy" else "#c62828"
    digits = max(digits, decimals(np.array([last.price])))
    return (
        f'last <b style="color:{color}">{last.price:,.{digits}f}</b> '
        f"<small>({escape(last.side)} {last.size:,.6g})</small>{stopped}"
    )
