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

from workbench.core.tradewindow import TradeWindow, volume_buckets
from workbench.events import Trade
from workbench.feeds.feed import Feed
from workbench.notebook.widgets.base import FeedWidget, escape, held
from workbench.notebook.widgets.orderbook import SIZE_FORMAT, decimals

PRICE_COLOR = "#1f4e79"
SMA_COLORS = ("#ff8f00", "#8e24aa", "#00897b", "#6d4c41", "#e91e63")
VOLUME_COLOR = "#78909c"
TIME_FORMAT = "%H:%M:%S"
VOLUME_BARS = 60
"""Volume buckets across the window at most (about): round widths, see ``volume_buckets``."""


class PriceWidget(FeedWidget):
    """Live price chart of ``symbol`` over its last ``window`` trades, at ``rate`` Hz."""

    def __init__(
        self,
        feed: Feed,
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

        x = bqplot.DateScale()
        y = bqplot.LinearScale()
        volume_y = bqplot.LinearScale(min=0.0)
        names = ["price", *(f"SMA {n}" for n in self.sma)]
        colors = [PRICE_COLOR, *(SMA_COLORS[i % len(SMA_COLORS)] for i in range(len(self.sma)))]
        self._colors, self._names = colors, names
        self.lines = bqplot.Lines(
            scales={"x": x, "y": y},
            colors=colors[:1],
            labels=names[:1],
            display_legend=True,
            stroke_width=1.5,
        )
        self.volume_bars = bqplot.Bars(
            scales={"x": x, "y": volume_y}, colors=[VOLUME_COLOR], padding=0.1
        )
        self.price_axis = bqplot.Axis(
            scale=y, side="left", label="price", tick_format=",.0f", label_offset="-62px"
        )
        price_axes = [bqplot.Axis(scale=x, tick_format=TIME_FORMAT), self.price_axis]
        volume_axes = [
            bqplot.Axis(scale=x, tick_format=TIME_FORMAT),
            bqplot.Axis(
                scale=volume_y, side="left", label="volume", num_ticks=3, tick_format=SIZE_FORMAT
            ),
        ]
        margin = {"top": 10, "bottom": 30, "left": 80, "right": 20}
        # No marks until the first data: bqplot draws an empty mark as d="null" and places
        # its curve labels at an undefined y, each a console error.
        self.price_chart = bqplot.Figure(
            marks=[],
            display_toolbar=False,
            axes=price_axes,
            fig_margin=margin,
            legend_location="top-left",
            layout=ipywidgets.Layout(height="260px", width="100%"),
        )
        self.price_chart.add_class("wb-price-chart")
        self.volume_chart = bqplot.Figure(
            marks=[],
            display_toolbar=False,
            axes=volume_axes,
            fig_margin=margin,
            layout=ipywidgets.Layout(height="120px", width="100%"),
        )
        self.volume_chart.add_class("wb-volume-chart")
        self.last_label = ipywidgets.HTML("last —")
        self.last_label.add_class("wb-last-price")
        title = ipywidgets.HTML(f"<b>{escape(symbol)}</b> · {escape(feed.name)}")
        header = ipywidgets.HBox(
            [title, self.last_label],
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
        charts = (self.price_chart, self.volume_chart, self.price_axis)
        with held(self.lines, self.volume_bars, self.last_label, *charts):
            if len(window) >= 2 and new:  # bqplot squeezes a 1-point 2-D array: wait for 2
                times = window.times()
                rows = window.price_and_smas()
                # A line whose newest point is NaN (an SMA still warming up) puts its label at
                # an undefined y: show each SMA from its first value on.
                ready = [0, *(i for i in range(1, len(rows)) if np.isfinite(rows[i, -1]))]
                if len(ready) != len(self.lines.colors):
                    self.lines.colors = [self._colors[i] for i in ready]
                    self.lines.labels = [self._names[i] for i in ready]
                self.lines.x, self.lines.y = times.view("datetime64[us]"), rows[ready]
                digits = decimals(rows[0])
                if self.price_axis.tick_format != f",.{digits}f":
                    self.price_axis.tick_format = f",.{digits}f"
                if not self.price_chart.marks:
                    self.price_chart.marks = [self.lines]
                bucket_x, volume = volume_buckets(times, window.sizes(), VOLUME_BARS)
                if len(volume) >= 2:  # a Bars mark first drawn with one bar never recovers
                    self.volume_bars.x = bucket_x.view("datetime64[us]")
                    self.volume_bars.y = volume
                    if not self.volume_chart.marks:
                        self.volume_chart.marks = [self.volume_bars]
            self.last_label.value = _last_html(self._last, running)


def _last_html(last: Trade | None, running: bool) -> str:
    stopped = "" if running else " <i>feed not running</i>"
    if last is None:
        return f"last —{stopped}"
    color = "#2e7d32" if last.side == "buy" else "#c62828"
    return (
        f'last <b style="color:{color}">{last.price:,.10g}</b> '
        f"<small>({escape(last.side)} {last.size:,.6g})</small>{stopped}"
    )
