"""Static snapshots of a widget's last frame: SVG charts and HTML tables, drawn in Python.

A live widget's output is a view of a model in the kernel; once the widget is closed (or the
kernel is gone) a saved notebook can only say "model not found". On close the widget replaces
its output with one of these bundles (``LiveWidget.close`` in ``base.py``), so the notebook
keeps what the user saw. Pure functions of frame data, with the live charts' tick rules
(:mod:`workbench.core.axes`) and the static charts' SVG building blocks
(:mod:`workbench.core.svg`, shared with the validation report's charts), so a test can parse
and check every label.

Each bundle carries ``text/html`` (what JupyterLab shows: the chart as an ``<img>`` with a
``data:`` URI, which its sanitizer lets through in an untrusted notebook, where inline SVG and
``image/svg+xml`` outputs are not rendered), ``image/svg+xml`` (the chart itself, for other
viewers and for tools) and a ``text/plain`` summary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from workbench.core import axes
from workbench.core.axes import plain, tick_labels
from workbench.core.svg import INK, MUTED, WIDTH, Panel, as_img, document, esc, header, no_data
from workbench.core.tradewindow import volume_buckets
from workbench.events import Level, Trade

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bundle = dict[str, str]

HEADER_PX = 24
BID_COLOR = "#2e7d32"
ASK_COLOR = "#c62828"
CHART_CLASS = "wb-snapshot-chart"
"""The class of a snapshot's chart ``<img>`` (the browser tests find the charts by it)."""


@dataclass(frozen=True)
class PriceFrame:
    """What the price widget last drew: its window of trades and the lines over it."""

    symbol: str
    feed: str
    times: Ints
    """Trade times, µs UTC, oldest first."""
    lines: Floats
    """One row per line: the price, then each SMA (NaN while it warms up)."""
    names: Sequence[str]
    colors: Sequence[str]
    sizes: Floats
    last: Trade | None
    running: bool
    volume_color: str = MUTED
    volume_bars: int = 60


@dataclass(frozen=True)
class BookFrame:
    """What the order-book widget last drew: the top levels of each side, best first."""

    symbol: str
    feed: str
    bids: list[Level]
    asks: list[Level]
    depth: int
    levels: int
    valid: bool
    running: bool
    ts: int = 0
    """The book's time (µs UTC), 0 if unknown."""


def _utc(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime(axes.DATE_TIME_FORMAT) + " UTC"


def _state(running: bool) -> str:
    return "snapshot" if running else "snapshot · feed stopped"


# -- price ------------------------------------------------------------------------------------


def price_svg(frame: PriceFrame) -> str:
    """Last price and legend, the price and SMA lines, and the volume bars beneath them on the
    same time axis: the live chart's layout and tick rules."""
    title = f"{frame.symbol} · {frame.feed}: price"
    heading = f"{frame.symbol} · {frame.feed}"
    if len(frame.times) < 2:
        message = f"no data yet: no trades of {frame.symbol} had arrived"
        return no_data(380, title, heading, message, "snapshot")
    times, lines = frame.times, frame.lines
    ready = [0, *(i for i in range(1, len(lines)) if np.isfinite(lines[i, -1]))]
    digits = axes.decimals(lines[0])
    low, high = float(np.nanmin(lines[ready])), float(np.nanmax(lines[ready]))
    pad = (high - low) * 0.05 or max(abs(high) * 1e-4, 10.0**-digits)
    price_ticks = axes.ticks_within(low - pad, high + pad, 8)
    price_labels = tick_labels(price_ticks, digits)

    bucket_x, volume = volume_buckets(times, frame.sizes, frame.volume_bars)
    first, last = int(times[0]), int(times[-1])
    half = int(bucket_x[1] - bucket_x[0]) // 2 if len(bucket_x) >= 2 else 0
    first, last = min(first, int(bucket_x[0]) - half), max(last, int(bucket_x[-1]) + half)
    last = max(last, first + 1)
    top, volume_ticks = axes.ticks_from_zero(float(volume.max()) or 1.0)
    volume_labels = tick_labels(volume_ticks)

    widest = max([*price_labels, *volume_labels, "00,000"], key=len)
    sample = axes.time_format(first, last).replace("%Y", "0000").replace("%", "")
    left = axes.label_px(widest) + 36
    width = WIDTH - left - (axes.label_px(sample) // 2 + 8)
    price = Panel(left, HEADER_PX + 26, width, 220, first, last, low - pad, high + pad)
    vol = Panel(left, price.bottom + 30, width, 80, first, last, 0.0, top)
    time_ticks = axes.time_ticks(first, last, clear=axes.CLEAR)

    parts = [header(heading, _state(frame.running)), _legend(frame, ready, digits)]
    parts += [price.y_ticks(price_ticks, price_labels, "price"), price.frame()]
    for row in ready[::-1]:  # the price line on top
        values = lines[row]
        points = " ".join(
            f"{price.x(float(t)):.1f},{price.y(float(v)):.1f}"
            for t, v in zip(times, values, strict=True)
            if np.isfinite(v)
        )
        width_px = 1.5 if row == 0 else 1.2
        parts.append(
            f'<polyline class="line" points="{points}" fill="none" '
            f'stroke="{frame.colors[row]}" stroke-width="{width_px}"/>'
        )
    parts.append(price.x_ticks(list(time_ticks), list(time_ticks.values())))
    parts += [vol.y_ticks(volume_ticks, volume_labels, "volume"), vol.frame()]
    bar = (vol.x(float(bucket_x[1])) - vol.x(float(bucket_x[0]))) * 0.9 if half else 4.0
    for x, v in zip(bucket_x, volume, strict=True):
        y = vol.y(float(v))
        parts.append(
            f'<rect class="bar" x="{vol.x(float(x)) - bar / 2:.1f}" y="{y:.1f}" '
            f'width="{bar:.1f}" height="{vol.bottom - y:.1f}" '
            f'fill="{frame.volume_color}"/>'
        )
    parts.append(vol.x_ticks(list(time_ticks), list(time_ticks.values())))
    return document(int(vol.bottom + 26), "".join(parts), title)


def _legend(frame: PriceFrame, ready: list[int], digits: int) -> str:
    """Last price, then one swatch per line, on a row under the title (outside the data)."""
    items = []
    if frame.last is not None:
        last = frame.last
        shown = max(digits, axes.decimals(np.array([last.price])))
        items.append(f"last {plain(last.price, shown)} ({last.side} {last.size:,.6g})")
    x, parts = 8.0, []
    for text in items:
        parts.append(f'<text class="last" x="{x:.0f}" y="34" fill="{INK}">{esc(text)}</text>')
        x += axes.label_px(text) + 12
    for row in ready:
        name, color = frame.names[row], frame.colors[row]
        parts.append(
            f'<line x1="{x:.0f}" x2="{x + 16:.0f}" y1="30" y2="30" stroke="{color}" '
            f'stroke-width="3"/><text class="legend" x="{x + 20:.0f}" y="34" fill="{INK}">'
            f"{esc(name)}</text>"
        )
        x += 28 + axes.label_px(name)
    return "".join(parts)


def price_text(frame: PriceFrame) -> str:
    head = f"{frame.symbol} · {frame.feed} price chart ({_state(frame.running)})"
    if len(frame.times) < 2:
        return f"{head}: no data yet"
    digits = axes.decimals(frame.lines[0])
    parts = [f"{len(frame.times):,} trades from {_utc(int(frame.times[0]))}"]
    parts.append(f"to {_utc(int(frame.times[-1]))}")
    if frame.last is not None:
        parts.append(f"last {plain(frame.last.price, digits)} ({frame.last.side})")
    for row in range(1, len(frame.lines)):
        value = frame.lines[row, -1]
        if np.isfinite(value):
            parts.append(f"{frame.names[row]} {plain(float(value), digits + 1)}")
    return f"{head}: " + ", ".join(parts)


def price_snapshot(frame: PriceFrame) -> Bundle:
    svg = price_svg(frame)
    text = price_text(frame)
    body = as_img(svg, text, CHART_CLASS)
    return {
        "text/html": f'<div class="wb-snapshot wb-price-snapshot">{body}</div>',
        "image/svg+xml": svg,
        "text/plain": text,
    }


# -- order book -------------------------------------------------------------------------------


def book_svg(frame: BookFrame) -> str:
    """The depth chart: cumulative bids and asks as filled steps, depth from 0."""
    title = f"{frame.symbol} · {frame.feed}: order book depth"
    heading = f"{frame.symbol} · {frame.feed} · {'book valid' if frame.valid else 'BOOK INVALID'}"
    bids, asks = frame.bids[: frame.depth], frame.asks[: frame.depth]
    if not bids and not asks:
        message = f"no data yet: no book levels of {frame.symbol} had arrived"
        return no_data(300, title, heading, message, "snapshot")
    bid_x, bid_y = axes.depth_curve(bids)
    ask_x, ask_y = axes.depth_curve(asks)
    prices, sizes = np.concatenate((bid_x, ask_x)), np.concatenate((bid_y, ask_y))
    digits = axes.decimals(prices)
    low, high = float(prices.min()), float(prices.max())
    if high == low:
        low, high = low - 10.0**-digits, high + 10.0**-digits
    price_ticks = axes.ticks_within(low, high, 5, clear=axes.CLEAR)
    price_labels = tick_labels(price_ticks, digits)
    top, size_ticks = axes.ticks_from_zero(float(sizes.max()) or 1.0, 4)
    size_labels = tick_labels(size_ticks)
    widest_price = max([plain(v, digits) for v in (low, high)], key=len)
    half = axes.label_px(widest_price) // 2 + 4
    left = max(axes.label_px(max(size_labels, key=len)) + 36, half)
    panel = Panel(left, HEADER_PX + 10, WIDTH - left - half, 230, low, high, 0.0, top)
    parts = [header(heading, _state(frame.running) + _as_of(frame.ts))]
    parts += [panel.y_ticks(size_ticks, size_labels, "cumulative size"), panel.frame()]
    for side_x, side_y, color in ((bid_x, bid_y, BID_COLOR), (ask_x, ask_y, ASK_COLOR)):
        if len(side_x):
            parts.append(_step_area(panel, side_x, side_y, color))
    parts.append(panel.x_ticks(price_ticks, price_labels))
    base = panel.bottom
    cx = panel.left + panel.width / 2
    parts.append(
        f'<text class="axis-title" x="{cx:.1f}" y="{base + 32:.1f}" text-anchor="middle" '
        f'fill="{INK}">price</text>'
    )
    return document(int(base + 42), "".join(parts), title)


def _as_of(ts: int) -> str:
    if not ts:
        return ""
    return " · " + dt.datetime.fromtimestamp(ts / 1e6, dt.UTC).strftime(axes.TIME_FORMAT) + " UTC"


def _step_area(panel: Panel, prices: Floats, totals: Floats, color: str) -> str:
    """One side as the live chart draws it (step-after from the best price out), filled to 0."""
    points = [(float(prices[0]), 0.0)]
    for i, (price, total) in enumerate(zip(prices, totals, strict=True)):
        if i:
            points.append((float(price), float(totals[i - 1])))
        points.append((float(price), float(total)))
    points.append((float(prices[-1]), 0.0))
    path = " ".join(f"{panel.x(p):.1f},{panel.y(s):.1f}" for p, s in points)
    return (
        f'<polygon class="depth" points="{path}" fill="{color}" fill-opacity="0.3" '
        f'stroke="{color}" stroke-width="1.5"/>'
    )


def ladder_html(frame: BookFrame) -> str:
    """The ladder: asks above bids (best levels meeting at the spread row), with running totals;
    inline styles only (a sanitizer drops ``<style>``)."""
    digits = axes.decimals(np.array([p for p, _ in frame.bids + frame.asks], dtype=np.float64))
    n = frame.levels
    cell = "padding:0 6px;text-align:right;font-family:monospace;font-size:12px"

    def rows(levels: list[Level], color: str) -> list[str]:
        _, totals = axes.depth_curve(levels)
        return [
            f'<tr style="color:{color}"><td style="{cell}">{plain(p, digits)}</td>'
            f'<td style="{cell}">{s:,.6g}</td><td style="{cell}">{t:,.6g}</td></tr>'
            for (p, s), t in zip(levels, totals, strict=True)
        ]

    asks = rows(frame.asks[:n], ASK_COLOR)[::-1]
    bids = rows(frame.bids[:n], BID_COLOR)
    spread = "—"
    if frame.asks and frame.bids:
        spread = plain(frame.asks[0][0] - frame.bids[0][0], digits)
    head = "".join(f'<th style="{cell}">{name}</th>' for name in ("price", "size", "total"))
    middle = (
        f'<tr class="wb-spread-row" style="background-color:#eceff1;color:#455a64">'
        f'<td style="{cell}">{spread}</td><td style="{cell}" colspan="2">spread</td></tr>'
    )
    return (
        '<table class="wb-ladder-table" style="border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(asks)}{middle}{''.join(bids)}"
        "</tbody></table>"
    )


def book_text(frame: BookFrame) -> str:
    head = f"{frame.symbol} · {frame.feed} order book ({_state(frame.running)}{_as_of(frame.ts)})"
    if not frame.bids and not frame.asks:
        return f"{head}: no data yet"
    digits = axes.decimals(np.array([p for p, _ in frame.bids + frame.asks], dtype=np.float64))
    bid = plain(frame.bids[0][0], digits) if frame.bids else "—"
    ask = plain(frame.asks[0][0], digits) if frame.asks else "—"
    quote = f"bid {bid}, ask {ask}"
    if frame.bids and frame.asks:
        best_bid, best_ask = frame.bids[0][0], frame.asks[0][0]
        quote += f", spread {plain(best_ask - best_bid, digits)}"
        quote += f", mid {plain((best_ask + best_bid) / 2, digits + 1)}"
    validity = "book valid" if frame.valid else "BOOK INVALID"
    return f"{head}: {quote}; {validity}; {len(frame.bids)} bid / {len(frame.asks)} ask levels"


def book_snapshot(frame: BookFrame) -> Bundle:
    svg = book_svg(frame)
    text = book_text(frame)
    body = as_img(svg, text, CHART_CLASS)
    if frame.bids or frame.asks:
        body = (
            f'<div style="display:flex;align-items:flex-start">{body}'
            f"<div>{ladder_html(frame)}</div></div>"
        )
    return {
        "text/html": f'<div class="wb-snapshot wb-book-snapshot">{body}</div>',
        "image/svg+xml": svg,
        "text/plain": text,
    }


# -- feed status ------------------------------------------------------------------------------


def status_snapshot(table_html: str, summaries: Sequence[str]) -> Bundle:
    """The status table as it last was (it is HTML already), and one summary line a feed."""
    text = "\n".join(summaries) or "no feeds started"
    return {
        "text/html": f'<div class="wb-snapshot wb-feed-status-snapshot">{table_html}'
        f'<div style="color:{MUTED}"><small>snapshot</small></div></div>',
        "text/plain": f"feed status (snapshot):\n{text}",
    }
