"""The order-book widget: depth chart, price/size ladder, best bid/ask, spread, mid, validity.

Each frame copies the top levels (``depth`` for the chart, ``levels`` for the ladder) under
the feed's lock (microseconds: the feed thread waits on that lock) and does all formatting
after releasing it. A frame whose book is unchanged —
same sequence number, time and validity, or the same top levels for venues without
sequence numbers — assigns nothing, so an idle book costs one lock round trip per tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bqplot  # type: ignore[import-untyped, unused-ignore]
import ipywidgets  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import numpy.typing as npt

from workbench.core import axes
from workbench.core.axes import decimals, depth_curve
from workbench.errors import UsageError
from workbench.events import Level
from workbench.feeds.protocol import AnyFeed
from workbench.notebook.widgets import snapshot
from workbench.notebook.widgets.base import FeedWidget, assign, escape, held

BID_COLOR = "#2e7d32"
ASK_COLOR = "#c62828"
LADDER_LEVELS = 10
"""Ladder rows a side by default: the ten best levels fit beside the chart."""
LADDER_ROW_PX = 15
QUOTE_PX = 24
SIZE_FORMAT = ",.4~g"
"""Sizes on an axis: 4 significant digits, no trailing zeros. Every axis gets an explicit
format: bqplot's default derives one from the scale's domain, which before the first data is
undefined (``invalid format: .undefinedg`` in the console)."""

Floats = npt.NDArray[np.float64]
LadderRow = tuple[str, float, float, float]
"""``(side, price, size, cumulative size from the best level)``; side is "ask" or "bid"."""

_BADGE = "color:#fff;padding:1px 6px;border-radius:3px;background:"
_VALID_HTML = f'<span class="wb-book-flag" style="{_BADGE}{BID_COLOR}">book valid</span>'
_INVALID_HTML = (
    f'<span class="wb-book-flag" style="{_BADGE}{ASK_COLOR};font-weight:bold">'
    "BOOK INVALID — resyncing</span>"
)


class OrderBookWidget(FeedWidget):
    """Live view of ``feed``'s book for ``symbol``, refreshed at ``rate`` Hz."""

    def __init__(
        self,
        feed: AnyFeed,
        symbol: str,
        *,
        depth: int = 20,
        levels: int = LADDER_LEVELS,
        rate: float = 10.0,
        autostart: bool = True,
    ) -> None:
        for name, value in (("depth", depth), ("levels", levels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be an integer >= 1, got {value!r}")
        self._watch(feed, symbol)
        self.depth = depth
        self.levels = levels
        self.ladder_rows: list[LadderRow] = []
        self._key: tuple[Any, ...] | None = None
        self._shown: tuple[Any, ...] | None = None

        x = bqplot.LinearScale()
        self.size_scale = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        y = self.size_scale
        self.depth_line = bqplot.Lines(
            scales={"x": x, "y": y},
            interpolation="step-after",
            fill="bottom",
            colors=[BID_COLOR, ASK_COLOR],
            fill_colors=[BID_COLOR, ASK_COLOR],
            fill_opacities=[0.3, 0.3],
            labels=["bids", "asks"],
        )
        self.price_axis = bqplot.Axis(
            scale=x, label="price", tick_format=",.0f", tick_values=np.array([0.0])
        )
        self.size_axis = bqplot.Axis(
            scale=y,
            side="left",
            label="cumulative size",
            tick_format=SIZE_FORMAT,
            tick_values=np.array([0.0, 1.0]),
        )
        # No mark until the first levels: bqplot draws an empty mark as d="null" and places
        # its curve labels at an undefined y, each a console error.
        self.depth_chart = bqplot.Figure(
            marks=[],
            axes=[self.price_axis, self.size_axis],
            display_toolbar=False,
            fig_margin=_margin("0", "0"),
            # as tall as the quote and the ladder beside it: no blank area under the chart
            layout=ipywidgets.Layout(height=f"{ladder_px(levels)}px", flex="1 1 auto"),
        )
        self.depth_chart.add_class("wb-depth-chart")
        self.valid_indicator = ipywidgets.HTML(_INVALID_HTML)
        self.valid_indicator.add_class("wb-book-invalid")
        self.state_label = ipywidgets.HTML("")
        self.ladder = ipywidgets.HTML(
            _quote_html(None, None, 0), layout=ipywidgets.Layout(flex="0 0 auto")
        )
        self.ladder.add_class("wb-ladder")
        title = ipywidgets.HTML(f"<b>{escape(symbol)}</b> · {escape(feed.name)}")
        header = ipywidgets.HBox(
            [title, self.valid_indicator, self.state_label],
            layout=ipywidgets.Layout(grid_gap="12px", align_items="baseline"),
        )
        body = ipywidgets.HBox(
            [self.depth_chart, self.ladder], layout=ipywidgets.Layout(align_items="flex-start")
        )
        super().__init__(
            [header, body],
            css_class="wb-orderbook",
            name=f"book-{feed.name}-{symbol}",
            rate=rate,
            autostart=autostart,
        )

    def _detached(self) -> Sequence[Any]:
        return (self.depth_line,)

    def _snapshot(self) -> snapshot.Bundle:
        (bids, asks), valid, running = self._shown or (([], []), False, self.feed.running)
        return snapshot.book_snapshot(
            snapshot.BookFrame(
                self.symbol,
                self.feed.name,
                bids,
                asks,
                depth=self.depth,
                levels=self.levels,
                valid=valid,
                running=running,
                ts=self._key[1] if self._key else 0,
            )
        )

    def _render(self) -> None:
        running = self.feed.running
        with self.feed.locked():
            book = self.feed.book(self.symbol)
            key = (book.seq, book.ts, book.valid, running)
            if key == self._key and book.seq is not None:
                return
            top = book.top(max(self.depth, self.levels))
            valid = book.valid
        self._key = key
        shown = (top, valid, running)
        if shown == self._shown:
            return  # e.g. a trade advanced the sequence number but the levels did not move
        self._shown = shown
        self._show(top, valid, running)

    def _show(self, top: tuple[list[Level], list[Level]], valid: bool, running: bool) -> None:
        bids, asks = top
        n = self.levels
        ask_rows = _ladder_side("ask", asks[:n])
        bid_rows = _ladder_side("bid", bids[:n])
        bids, asks = bids[: self.depth], asks[: self.depth]
        bid_x, bid_y = depth_curve(bids)
        ask_x, ask_y = depth_curve(asks)
        digits = decimals(np.concatenate((bid_x, ask_x)))
        self.ladder_rows = ask_rows[::-1] + bid_rows
        best_bid = bids[0][0] if bids else None
        best_ask = asks[0][0] if asks else None
        # Every comm message costs ~0.1-0.2 ms of kernel time whatever its size, so a frame
        # sends two: one mark with a row per side, and one HTML for the quote and the ladder
        # (axes and scales only when their range moves).
        held_widgets = (self.depth_chart, self.price_axis, self.size_axis, self.size_scale)
        with held(
            self.depth_line, self.ladder, self.valid_indicator, self.state_label, *held_widgets
        ):
            sides = [i for i, side in enumerate((bid_x, ask_x)) if len(side)]
            if sides:  # an empty side is left out: a NaN row puts its label at undefined y
                colors = [(BID_COLOR, ASK_COLOR)[i] for i in sides]
                if list(self.depth_line.colors) != colors:
                    self.depth_line.colors = self.depth_line.fill_colors = colors
                    self.depth_line.labels = [("bids", "asks")[i] for i in sides]
                self.depth_line.x = _rows(bid_x, ask_x)[sides]
                self.depth_line.y = _rows(bid_y, ask_y)[sides]
                self._show_axes(np.concatenate((bid_x, ask_x)), np.concatenate((bid_y, ask_y)))
                if not self.depth_chart.marks:
                    self.depth_chart.marks = [self.depth_line]
            self._show_validity(valid)
            self.state_label.value = "" if running else "<i>feed not running</i>"
            self.ladder.value = _quote_html(best_bid, best_ask, digits) + _ladder_html(
                self.ladder_rows, digits, n
            )

    def _show_axes(self, prices: Floats, sizes: Floats) -> None:
        """Depth from 0 to a round top; round price ticks inside the prices shown, with the
        margins their labels need (the end ones too). Both keep their step while it fits."""
        digits = decimals(prices)
        low, high = float(prices.min()), float(prices.max())
        shown = self.price_axis.tick_values
        step = float(shown[1] - shown[0]) if len(shown) >= 2 else 0.0
        ticks = axes.ticks_within(low, high, 5, clear=axes.CLEAR, keep=step)
        top, size_ticks = axes.steady_ticks_from_zero(
            (self.size_scale.max, self.size_axis.tick_values.tolist()), float(sizes.max()), 4
        )
        widest_size = max((f"{v:,.4g}" for v in size_ticks), key=len)
        widest_price = max((f"{v:,.{digits}f}" for v in (low, high)), key=len)
        assign(self.size_scale, max=top)
        assign(self.size_axis, tick_values=np.array(size_ticks))
        assign(self.size_axis, label_offset=f"{axes.label_px(widest_size) + 21}px")
        assign(self.price_axis, tick_format=f",.{digits}f", tick_values=np.array(ticks))
        assign(self.depth_chart, fig_margin=_margin(widest_size, widest_price))

    def _show_validity(self, valid: bool) -> None:
        wanted, other = ("wb-book-valid", "wb-book-invalid")
        if not valid:
            wanted, other = other, wanted
        if wanted in self.valid_indicator._dom_classes:
            return
        self.valid_indicator.remove_class(other)
        self.valid_indicator.add_class(wanted)
        self.valid_indicator.value = _VALID_HTML if valid else _INVALID_HTML

    @property
    def book_valid_shown(self) -> bool:
        """What the indicator says right now (from its CSS class, as a browser sees it)."""
        return "wb-book-valid" in self.valid_indicator._dom_classes


def _margin(widest_size: str, widest_price: str) -> dict[str, int]:
    """Room for the size ticks and title on the left, half a price label at each end."""
    half = axes.label_px(widest_price) // 2 + 4
    return {
        "top": 10,
        "bottom": 40,
        "left": max(axes.label_px(widest_size) + axes.TITLE_MARGIN_PX, half),
        "right": half,
    }


def _ladder_side(side: str, levels: list[Level]) -> list[LadderRow]:
    _, totals = depth_curve(levels)
    return [(side, p, s, float(c)) for (p, s), c in zip(levels, totals, strict=True)]


def ladder_px(levels: int) -> int:
    """The height of the quote line and a ladder of ``levels`` a side with its spread row."""
    return QUOTE_PX + LADDER_ROW_PX * (2 * levels + 2)


def _rows(bids: Floats, asks: Floats) -> Floats:
    """Both sides as the rows of one array; the shorter one repeats its last point (drawn as
    nothing), an empty one is NaN (not drawn). At least two columns: bqplot squeezes a
    ``(2, 1)`` array into a single line of two points."""
    out = np.full((2, max(len(bids), len(asks), 2)), np.nan)
    for row, values in enumerate((bids, asks)):
        if len(values):
            out[row, : len(values)] = values
            out[row, len(values) :] = values[-1]
    return out


def _price(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _quote_html(best_bid: float | None, best_ask: float | None, digits: int) -> str:
    spread = mid = None
    if best_bid is not None and best_ask is not None:
        spread, mid = best_ask - best_bid, (best_ask + best_bid) / 2
    parts = (
        ("wb-best-bid", "bid", _price(best_bid, digits), BID_COLOR),
        ("wb-best-ask", "ask", _price(best_ask, digits), ASK_COLOR),
        ("wb-spread", "spread", _price(spread, digits), "inherit"),
        ("wb-mid", "mid", _price(mid, digits + 1), "inherit"),
    )
    spans = " ".join(
        f'<span class="{cls}">{name} <b style="color:{color}">{value}</b></span>'
        for cls, name, value, color in parts
    )
    return f'<div class="wb-quote">{spans}</div>'


_LADDER_STYLE = (
    f"<style>.wb-quote{{height:{QUOTE_PX}px;line-height:{QUOTE_PX}px;white-space:nowrap}}"
    ".wb-ladder-table{font-family:monospace;font-size:12px;text-align:right;"
    "border-collapse:collapse}.wb-ladder-table td,.wb-ladder-table th"
    f"{{padding:0 6px;height:{LADDER_ROW_PX}px;line-height:{LADDER_ROW_PX}px}}"
    f".wb-ladder-table .wb-ask{{color:{ASK_COLOR}}}.wb-ladder-table .wb-bid{{color:{BID_COLOR}}}"
    ".wb-ladder-table .wb-spread-row{background:#eceff1;color:#455a64}</style>"
)


def _ladder_html(rows: list[LadderRow], digits: int, levels: int) -> str:
    """Asks above bids, best levels meeting at the spread row; sizes as given by the venue.
    A side with fewer than ``levels`` levels is padded with blank rows, so the ladder keeps
    the height the chart beside it was given."""
    asks = [r for r in rows if r[0] == "ask"]
    bids = [r for r in rows if r[0] == "bid"]
    blank = '<tr class="wb-blank"><td>&nbsp;</td><td></td><td></td></tr>'
    spread = "—"
    if asks and bids:
        spread = f"{asks[-1][1] - bids[0][1]:,.{digits}f}"
    body = "".join(
        [
            blank * (levels - len(asks)),
            *(_ladder_row(r, digits) for r in asks),
            f'<tr class="wb-spread-row"><td>{spread}</td><td colspan="2">spread</td></tr>',
            *(_ladder_row(r, digits) for r in bids),
            blank * (levels - len(bids)),
        ]
    )
    return (
        f'{_LADDER_STYLE}<table class="wb-ladder-table"><thead><tr><th>price</th><th>size</th>'
        f"<th>total</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _ladder_row(row: LadderRow, digits: int) -> str:
    side, price, size, total = row
    return (
        f'<tr class="wb-{side}"><td>{price:,.{digits}f}</td><td>{size:,.6g}</td>'
        f"<td>{total:,.6g}</td></tr>"
    )
