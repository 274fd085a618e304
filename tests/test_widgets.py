"""Live widgets, asserted on their widget state (what the frontend would be sent), no browser.

Two sources: a real Feed replaying the simulator's own messages in-process (``Replay``: the
Feed's connection-handler API, no socket), for exact state at a known moment; and the
embedded simulator on 127.0.0.1 recording into a real DuckDB file, for the pumps end to end.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from bqplot.traits import array_from_json  # type: ignore[import-untyped, unused-ignore]
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.e2e import wait_for
from workbench.core import axes
from workbench.core.indicators import sma
from workbench.core.tradewindow import TradeWindow, bucket_width, volume_buckets
from workbench.errors import UsageError
from workbench.feeds.feed import Feed
from workbench.notebook.widgets import FeedStatusWidget, OrderBookWidget, PriceWidget
from workbench.notebook.widgets.orderbook import decimals
from workbench.notebook.widgets.status import COLUMNS, status_html
from workbench.sim.market import Market
from workbench.sim.market import Trade as SimTrade
from workbench.sim.server import SimConfig, SimServer
from workbench.workbench import Workbench

SYM = "BTC-USD"


class Discard:
    """The replayed feed's row sink: recording is not what these tests look at."""

    fault: str | None = None

    def __init__(self) -> None:
        self.ingest_seqs = itertools.count(1)

    def submit(self, table: str, columns: dict[str, Any]) -> None:
        pass

    def wait_for_room(self, timeout: float) -> bool:
        return True


class Replay:
    """A real (unstarted) Feed fed simulator messages through its connection-handler API."""

    def __init__(self, seed: int = 3) -> None:
        self.market = Market(seed, [SYM])
        self.feed = Feed("sim", [SYM], Discard(), ws_url="ws://127.0.0.1:9/ws")
        self.feed.stream.on_connected(1)
        self.snapshot()
        self.ts = 1_763_712_000_000_000

    def snapshot(self) -> None:
        self.feed.stream.on_messages(1, [msgspec.json.encode(self.market.snapshot(SYM))], 0)

    def advance(self, trades: int) -> None:
        """Step the market until ``trades`` more trades have been sent (with book changes)."""
        payloads, seen = [], 0
        while seen < trades:
            self.ts += 1000
            for message in self.market.step(SYM, self.ts):
                payloads.append(msgspec.json.encode(message))
                seen += isinstance(message, SimTrade)
        self.feed.stream.on_messages(1, payloads, self.ts)

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        with self.feed.locked():
            return self.feed.book(SYM).top(depth)

    def all_trades(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, trades = self.feed.recent_trades(SYM, 0)
        return (
            np.array([t.ts for t in trades]),
            np.array([t.price for t in trades]),
            np.array([t.size for t in trades]),
        )


@pytest.fixture
def replay() -> Replay:
    return Replay()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(port=0, seed=8, symbols=(SYM,), rate=300)) as server:
        yield server


@pytest.fixture
def wb(tmp_path: Path) -> Iterator[Workbench]:
    bench = Workbench.open(tmp_path / "widgets.duckdb")
    try:
        yield bench
    finally:
        bench.close()


def pump_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("wb-pump-")]


def sent(widget: Any, name: str) -> Any:
    """The array ``widget`` sends the browser for trait ``name``, decoded as the browser does."""
    return array_from_json(widget.get_state(name)[name])


def assert_depth_matches(widget: OrderBookWidget, bids: list[Any], asks: list[Any]) -> None:
    x, y = widget.depth_line.x, widget.depth_line.y
    assert x.shape == y.shape == (2, max(len(bids), len(asks), 2))
    for row, levels in ((0, bids), (1, asks)):
        n = len(levels)
        assert x[row, :n].tolist() == [p for p, _ in levels]
        assert np.allclose(y[row, :n], np.cumsum([s for _, s in levels]), rtol=0, atol=1e-9)
        # a shorter side repeats its last point (draws nothing more)
        assert (x[row, n:] == x[row, n - 1]).all() and (y[row, n:] == y[row, n - 1]).all()


# -- order book --------------------------------------------------------------------------------


def test_the_depth_chart_is_the_cumulative_top_of_the_book(replay: Replay) -> None:
    widget = OrderBookWidget(replay.feed, SYM, depth=5, autostart=False)
    try:
        for _ in range(5):
            replay.advance(3)
            widget.update()
            bids, asks = replay.top(5)
            assert len(bids) == len(asks) == 5
            assert_depth_matches(widget, bids, asks)
            assert widget.depth_line.y[0, 0] > 0 and bids[0][0] < asks[0][0]
    finally:
        widget.close()


def test_the_depth_axis_runs_from_0_and_the_end_price_labels_fit(replay: Replay) -> None:
    widget = OrderBookWidget(replay.feed, SYM, autostart=False)
    try:
        replay.advance(20)
        widget.update()
        bids, asks = replay.top(20)
        deepest = max(sum(s for _, s in bids), sum(s for _, s in asks))
        top, ticks = widget.size_scale.max, widget.size_axis.tick_values.tolist()
        assert widget.size_scale.min == 0 and not widget.size_scale.allow_padding
        assert ticks[0] == 0 and ticks[-1] == top >= deepest > ticks[-2]
        low, high = bids[-1][0], asks[-1][0]
        prices = widget.price_axis.tick_values.tolist()
        clear = 0.05 * (high - low)
        assert prices and low + clear <= prices[0] and prices[-1] <= high - clear
        # half the widest price label fits right of the plot, the size title left of it
        digits = decimals(np.array([p for p, _ in bids + asks]))
        assert widget.price_axis.tick_format == f",.{digits}f"
        widest = max(len(f"{p:,.{digits}f}") for p in (low, high))
        margin = widget.depth_chart.fig_margin
        assert margin["right"] >= 7 * widest / 2
        offset = int(widget.size_axis.label_offset.removesuffix("px"))
        assert margin["left"] > offset > 7 * max(len(f"{t:,.4g}") for t in ticks)
        assert not widget.depth_chart.display_toolbar
    finally:
        widget.close()


def test_the_ladder_lists_asks_above_bids_with_running_totals(replay: Replay) -> None:
    replay.advance(10)
    widget = OrderBookWidget(replay.feed, SYM, depth=12, levels=4, autostart=False)
    try:
        widget.update()
        bids, asks = replay.top(4)
        rows = widget.ladder_rows
        assert [r[0] for r in rows] == ["ask"] * 4 + ["bid"] * 4
        assert [(p, s) for _, p, s, _ in rows] == asks[::-1] + bids
        assert [r[3] for r in rows[:4]] == pytest.approx(np.cumsum([s for _, s in asks])[::-1])
        assert [r[3] for r in rows[4:]] == pytest.approx(np.cumsum([s for _, s in bids]))
        # the HTML shows the same rows, top to bottom: prices strictly descending, with the
        # spread row between the best ask and the best bid
        shown = re.findall(
            r'<tr class="wb-(ask|bid|spread-row)"[^>]*><td[^>]*>([\d,.]+)</td>',
            widget.ladder.value,
        )
        assert [side for side, _ in shown] == ["ask"] * 4 + ["spread-row"] + ["bid"] * 4
        d = decimals(np.array([p for p, _ in bids + asks]))
        assert shown[4][1] == f"{asks[0][0] - bids[0][0]:,.{d}f}"
        del shown[4]
        prices = [float(p.replace(",", "")) for _, p in shown]
        assert prices == [r[1] for r in rows] and prices == sorted(prices, reverse=True)
        # the chart keeps its own depth
        assert widget.depth_line.x.shape == (2, 12)
    finally:
        widget.close()


def test_the_ladder_shows_ten_levels_a_side_and_pads_a_short_side(replay: Replay) -> None:
    replay.advance(10)
    widget = OrderBookWidget(replay.feed, SYM, autostart=False)
    try:
        widget.update()
        assert [r[0] for r in widget.ladder_rows] == ["ask"] * 10 + ["bid"] * 10
        with replay.feed.locked():  # a one-sided book: the ladder keeps its height
            book = replay.feed.book(SYM)
            for price, _ in book.asks():
                book.set_ask(price, 0.0)
            book.seq = (book.seq or 0) + 1  # as the venue's delta would
        widget.update()
        table = widget.ladder.value
        assert table.count('class="wb-blank"') == 10 and table.count('class="wb-bid"') == 10
        assert re.search(r'class="wb-spread-row"><td>—</td>', table)
        assert widget.depth_line.labels == ["bids"] and widget.depth_line.y.size == 20
    finally:
        widget.close()


def test_the_quote_shows_best_bid_best_ask_spread_and_mid(replay: Replay) -> None:
    widget = OrderBookWidget(replay.feed, SYM, autostart=False)
    try:
        widget.update()
        bids, asks = replay.top(20)
        (bid, _), (ask, _) = bids[0], asks[0]
        d = decimals(np.array([p for p, _ in bids + asks]))  # every price exact, aligned
        text = re.sub(r"<[^>]+>", "", widget.ladder.value)
        assert f"bid {bid:,.{d}f}" in text and f"ask {ask:,.{d}f}" in text
        assert f"spread {ask - bid:,.{d}f}" in text and f"mid {(ask + bid) / 2:,.{d + 1}f}" in text
    finally:
        widget.close()


@pytest.mark.parametrize(
    ("prices", "digits"),
    [([30000.5, 30001.0], 1), ([30000.0], 0), ([0.1234, 0.1], 4), ([30000.00001], 5), ([], 0)],
)
def test_prices_are_shown_with_the_digits_they_need(prices: list[float], digits: int) -> None:
    assert decimals(np.array(prices, dtype=np.float64)) == digits


def test_an_invalid_book_shows_a_red_indicator_until_a_snapshot_restores_it(
    replay: Replay,
) -> None:
    widget = OrderBookWidget(replay.feed, SYM, autostart=False)
    try:
        widget.update()
        assert widget.book_valid_shown
        assert "wb-book-valid" in widget.valid_indicator._dom_classes
        with replay.feed.locked():
            replay.feed.book(SYM).invalidate()
        widget.update()
        classes = widget.valid_indicator._dom_classes
        assert "wb-book-invalid" in classes and "wb-book-valid" not in classes
        assert "BOOK INVALID" in widget.valid_indicator.value
        assert "background:#c62828" in widget.valid_indicator.value  # visibly red
        assert not widget.book_valid_shown
        replay.snapshot()  # the venue's fresh book makes it valid again
        widget.update()
        assert widget.book_valid_shown and "BOOK INVALID" not in widget.valid_indicator.value
    finally:
        widget.close()


def test_a_frame_with_an_unchanged_book_assigns_nothing(replay: Replay) -> None:
    widget = OrderBookWidget(replay.feed, SYM, autostart=False)
    changes: list[str] = []
    for part in (widget.depth_line, widget.ladder, widget.valid_indicator):
        part.observe(lambda change: changes.append(change["name"]))
    try:
        widget.update()
        assert "x" in changes and "value" in changes
        changes.clear()
        rows = widget.ladder_rows
        widget.update()
        widget.update()
        assert changes == []
        assert widget.ladder_rows is rows  # not even recomputed
        replay.advance(2)
        widget.update()
        assert "y" in changes  # sizes moved: the chart is sent again
    finally:
        widget.close()


def test_a_depth_below_one_or_an_unknown_symbol_is_a_usage_error(replay: Replay) -> None:
    with pytest.raises(UsageError, match="depth"):
        OrderBookWidget(replay.feed, SYM, depth=0, autostart=False)
    with pytest.raises(UsageError, match="does not record 'NOPE'"):
        OrderBookWidget(replay.feed, "NOPE", autostart=False)
    with pytest.raises(UsageError, match="does not record 'NOPE'"):
        PriceWidget(replay.feed, "NOPE", autostart=False)


# -- price -------------------------------------------------------------------------------------


def test_the_price_window_is_bounded_and_the_smas_equal_the_vectorized_sma(
    replay: Replay,
) -> None:
    widget = PriceWidget(replay.feed, SYM, sma=(5, 20), window=100, autostart=False)
    try:
        for batch in (3, 40, 1, 150, 77, 260):  # crosses the window several times
            replay.advance(batch)
            widget.update()
            ts, prices, _ = replay.all_trades()
            n = min(len(prices), 100)
            x, y = widget.lines.x, widget.lines.y
            # an SMA line appears once it has a value (a NaN end would misplace its label)
            warm = [p for p in (5, 20) if len(prices) >= p]
            assert widget.lines.labels == ["price", *(f"SMA {p}" for p in warm)]
            assert y.shape == (1 + len(warm), n) and x.shape == (n,)
            assert sent(widget.lines, "x").tolist() == ts[-n:].tolist()  # µs, exact
            assert y[0].tolist() == prices[-n:].tolist()
            for row, period in enumerate(warm, 1):
                expected = sma(prices, period)[-n:]
                assert np.allclose(y[row], expected, rtol=0, atol=1e-9, equal_nan=True)
        assert len(prices) > 500 and widget.trades.total == len(prices)
        assert widget.missed_trades == 0
    finally:
        widget.close()


def test_the_volume_bars_add_up_the_window_per_time_bucket(replay: Replay) -> None:
    widget = PriceWidget(replay.feed, SYM, window=300, autostart=False)
    try:
        replay.advance(800)
        widget.update()
        ts, _, sizes = replay.all_trades()
        ts, sizes = ts[-300:], sizes[-300:]
        width = bucket_width(int(ts[-1] - ts[0]), 60)
        keys = np.arange(ts[0] // width, ts[-1] // width + 1)  # every bucket, empty ones too
        expected = [sizes[ts // width == k].sum() for k in keys]
        assert sent(widget.volume_bars, "x").tolist() == (keys * width + width // 2).tolist()
        assert np.allclose(widget.volume_bars.y, expected, rtol=1e-12, atol=0)
        assert 2 <= len(keys) <= 61
        # the volume axis runs from 0 to a round top above the highest bar
        scale, ticks = widget.volume_scale, widget.volume_axis.tick_values.tolist()
        assert scale.min == 0 and ticks[0] == 0 and ticks[-1] == scale.max >= max(expected)
        assert not scale.allow_padding
    finally:
        widget.close()


def test_the_price_and_volume_panels_share_one_time_domain_with_utc_tick_labels(
    replay: Replay,
) -> None:
    widget = PriceWidget(replay.feed, SYM, window=300, autostart=False)
    try:
        replay.advance(800)
        widget.update()
        ts, prices, _ = replay.all_trades()
        bars, scale = widget.volume_bars.x, widget.time_scale
        half = (bars[1] - bars[0]) / 2
        # one scale, set by the kernel: every trade and every whole bar inside it
        assert widget.lines.scales["x"] is widget.volume_bars.scales["x"] is scale
        assert scale.min == min(ts[-300], bars[0] - half) and scale.max == bars[-1] + half
        assert widget.price_chart.fig_margin == widget.volume_chart.fig_margin
        price_ticks, volume_ticks = widget.time_axes
        assert price_ticks.tick_labels == volume_ticks.tick_labels
        assert (price_ticks.tick_values == volume_ticks.tick_values).all()
        step = np.diff(price_ticks.tick_values)[0]
        for us in price_ticks.tick_values:
            moment = dt.datetime.fromtimestamp(us / 1e6, dt.UTC)
            label = moment.strftime("%H:%M:%S")
            if step < 1e6:  # a window of sub-second trades: milliseconds too
                label += f".{moment.microsecond // 1000:03d}"
            assert price_ticks.tick_labels[str(int(us))] == label
            clear = 0.05 * (scale.max - scale.min)
            assert scale.min + clear <= us <= scale.max - clear
        # prices with the decimals the instrument needs, the title clear of the widest tick
        digits = decimals(prices[-300:])
        assert widget.price_axis.tick_format == f",.{digits}f"
        widest = max(len(f"{p:,.{digits}f}") for p in prices[-300:])
        assert int(widget.price_axis.label_offset.removesuffix("px")) > 7 * widest + 9
        assert widget.price_chart.fig_margin["left"] > int(
            widget.price_axis.label_offset.removesuffix("px")
        )
        # the legend is outside the plot, in the header
        assert not widget.lines.display_legend
        assert all(name in widget.legend.value for name in ("price", "SMA 20", "SMA 50"))
    finally:
        widget.close()


def test_time_labels_cover_the_ticks_on_screen_and_the_new_ones(replay: Replay) -> None:
    # The browser redraws the axis with the labels it has when the values change: the old
    # ticks' labels stay until the values have moved on, the new ones' are there before.
    widget = PriceWidget(replay.feed, SYM, window=100, autostart=False)
    axis = widget.time_axes[0]
    try:
        before: set[str] = set()
        moved = 0
        for _ in range(40):
            replay.advance(30)
            widget.update()
            now = {str(int(v)) for v in axis.tick_values}
            assert before | now <= axis.tick_labels.keys()
            assert len(axis.tick_labels) <= 2 * 9  # about 8 ticks a frame: old ones dropped
            moved += now != before
            before = now
        assert moved >= 3  # the window slid past several ticks
    finally:
        widget.close()


def test_axis_ticks_are_round_and_time_labels_add_the_date_across_days() -> None:
    assert axes.ticks_from_zero(52.3, 4) == (60.0, [0.0, 20.0, 40.0, 60.0])
    assert axes.ticks_from_zero(0.0) == (1.0, [0.0, 1.0])
    assert axes.ticks_within(29990.0, 30016.5, 5) == [29990.0, 30000.0, 30010.0]
    assert axes.ticks_within(0.1203, 0.1251, 4) == [0.122, 0.124]
    assert axes.ticks_within(29990.0, 30016.5, 5, clear=0.05) == [30000.0, 30010.0]
    assert axes.ticks_within(29984.0, 30010.5, 5, clear=0.05) == [29990.0, 30000.0]
    # a step shown so far stays while it gives 2 to 2 x count ticks, else a new one is picked
    assert axes.ticks_within(29990.0, 30016.5, 5, keep=5.0) == [29990.0 + 5 * i for i in range(6)]
    assert axes.ticks_within(29990.0, 30016.5, 2, keep=5.0) == axes.ticks_within(
        29990.0, 30016.5, 2
    )
    # the depth axis keeps its top while the deepest level is in its upper half
    shown = (80.0, [0.0, 20.0, 40.0, 60.0, 80.0])
    assert axes.steady_ticks_from_zero(shown, 41.0, 4) == shown
    assert axes.steady_ticks_from_zero(shown, 39.0, 4) == axes.ticks_from_zero(39.0, 4)
    assert axes.steady_ticks_from_zero(shown, 81.0, 4) == (100.0, [0.0, 50.0, 100.0])
    day = 1_764_892_800_000_000  # 2025-12-05 00:00:00 UTC
    second = 1_000_000
    assert axes.time_ticks(day + 5 * second + 1, day + 13 * second, 4) == {
        day + s * second: f"00:00:{s:02d}" for s in (6, 8, 10, 12)
    }
    assert list(axes.time_ticks(day + 1, day + second // 4).values())[:2] == [
        "00:00:00.050",
        "00:00:00.100",
    ]
    # none in the first or last 20% of the span: 00:00:06 is 1 s (12.5%) from the start,
    # 00:00:12 as far from the end
    assert list(axes.time_ticks(day + 5 * second + 1, day + 13 * second, 4, clear=0.2)) == [
        day + s * second for s in (8, 10)
    ]
    across = axes.time_ticks(day - 3600 * second, day + 3600 * second, 4)
    assert across[day] == "2025-12-05 00:00:00" and len(across) == 5


def test_the_last_price_label_shows_the_newest_trade(replay: Replay) -> None:
    widget = PriceWidget(replay.feed, SYM, autostart=False)
    try:
        widget.update()
        assert widget.last_label.value.startswith("last —")
        replay.advance(4)
        widget.update()
        trades = replay.feed.recent_trades(SYM)[1]
        last = trades[-1]
        digits = decimals(np.array([t.price for t in trades]))  # as on the price axis
        color = "#2e7d32" if last.side == "buy" else "#c62828"
        shown = f'<b style="color:{color}">{last.price:,.{digits}f}</b>'
        assert shown in widget.last_label.value
        assert f"{last.side} {last.size:,.6g}" in widget.last_label.value
        assert "not running" in widget.last_label.value  # a replayed feed never started
    finally:
        widget.close()


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(2, 40),
    batches=st.lists(st.integers(0, 60), min_size=1, max_size=30),
    periods=st.lists(st.integers(1, 30), max_size=3),
)
def test_a_trade_window_is_the_tail_of_the_stream_however_it_arrives(
    window: int, batches: list[int], periods: list[int]
) -> None:
    rng = np.random.default_rng(len(batches))
    total = sum(batches)
    ts = np.cumsum(rng.integers(0, 3_000_000, total))
    prices = 100 + rng.normal(0, 1, total).cumsum()
    sizes = rng.random(total)
    trades = TradeWindow(window, periods)
    start = 0
    for count in batches:
        end = start + count
        trades.extend(ts[start:end].tolist(), prices[start:end].tolist(), sizes[start:end].tolist())
        start = end
        n = min(end, window)
        assert len(trades) == n
        assert trades.times().tolist() == ts[end - n : end].tolist()
        assert trades.sizes().tolist() == sizes[end - n : end].tolist()
        rows = trades.price_and_smas()
        assert rows.shape == (1 + len(periods), n)
        assert rows[0].tolist() == prices[end - n : end].tolist()
        for row, period in enumerate(periods, 1):
            expected = sma(prices[:end], period)[end - n :]
            assert np.allclose(rows[row], expected, rtol=0, atol=1e-9, equal_nan=True)
        if n:
            times, volumes = volume_buckets(trades.times(), trades.sizes())
            assert volumes.sum() == pytest.approx(sizes[end - n : end].sum())
            assert len(times) <= 61 and (np.diff(times) > 0).all()


def test_late_trades_are_drawn_at_the_newest_time_seen() -> None:
    trades = TradeWindow(10)
    trades.extend([100, 300, 200], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    trades.extend([250, 400], [4.0, 5.0], [1.0, 1.0])
    assert trades.times().tolist() == [100, 300, 300, 300, 400]


def test_a_window_below_two_is_a_usage_error(replay: Replay) -> None:
    with pytest.raises(UsageError, match="window must be an integer >= 2"):
        PriceWidget(replay.feed, SYM, window=1, autostart=False)


# -- errors, pumps, close ------------------------------------------------------------------------


class FlakyBook(OrderBookWidget):
    """Fails every other frame, as a render bug would."""

    frames = 0

    def _render(self) -> None:
        self.frames += 1
        if self.frames % 2:
            raise ValueError("boom: bad frame")
        super()._render()


def test_a_render_error_is_shown_once_in_the_widget_and_the_pump_keeps_going(
    wb: Workbench, sim: SimServer
) -> None:
    feed = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    widget = FlakyBook(feed, SYM, rate=40)
    try:
        assert wait_for(lambda: widget.stats.errors >= 4, 10)
        assert widget.pump.alive
        assert widget.stats.ticks >= 2 * widget.stats.errors - 1
        (shown,) = widget.error_output.outputs  # one distinct error: shown once
        assert shown["output_type"] == "stream" and shown["name"] == "stderr"
        assert "ValueError: boom: bad frame" in shown["text"]
        assert "wb-pump-book-" in shown["text"] and "Traceback" in shown["text"]
        assert widget.depth_line.x.shape[0] == 2  # the good frames rendered
    finally:
        widget.close()
    assert pump_threads() == []


def test_close_stops_the_pump_and_closes_every_widget_inside(wb: Workbench, sim: SimServer) -> None:
    feed = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    book = OrderBookWidget(feed, SYM, rate=40)
    price = PriceWidget(feed, SYM, autostart=False)  # never started: close still works
    assert wait_for(lambda: book.stats.ticks >= 2, 10)
    inner = [book.depth_line, book.depth_chart, book.ladder, book.depth_chart.axes[0]]
    book.close()
    price.close()
    assert not book.pump.alive and pump_threads() == []
    assert all(w.comm is None for w in [*inner, book, price, price.lines, price.volume_bars])


def test_widgets_stream_from_a_live_feed_and_close_leaves_no_pump_thread(
    wb: Workbench, sim: SimServer
) -> None:
    feed = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    book = OrderBookWidget(feed, SYM, rate=20)
    price = PriceWidget(feed, SYM, window=50, rate=20)
    status = FeedStatusWidget(wb, rate=5)
    widgets = [book, price, status]
    try:
        assert {"wb-orderbook", "wb-price", "wb-feed-status"} <= {
            c for w in widgets for c in w._dom_classes
        }
        assert sorted(pump_threads()) == sorted(w.pump.thread_name for w in widgets)
        assert wait_for(lambda: len(book.ladder_rows) == 20 and book.book_valid_shown, 15)
        first = book.depth_line.y.copy()
        assert wait_for(lambda: not np.array_equal(book.depth_line.y, first, equal_nan=True), 15)
        assert wait_for(lambda: price.lines.y.shape == (3, 50), 30)  # the window filled up
        seen = price.lines.x[-1]
        assert wait_for(lambda: price.lines.x[-1] > seen, 15)  # and keeps sliding
        assert wait_for(lambda: f"<td>{feed.name}</td>" in status.table.value, 10)
        assert status.rows and status.rows[0].name == feed.name
        assert "wb-book-valid" in status.table.value and "<td>yes</td>" in status.table.value
        assert all(w.stats.errors == 0 for w in widgets)
    finally:
        for w in widgets:
            w.close()
    assert pump_threads() == []
    assert not any(w.pump.alive for w in widgets)


def test_when_the_feed_stops_the_widgets_show_it_once_and_their_pumps_end(
    wb: Workbench, sim: SimServer
) -> None:
    feed = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    book = OrderBookWidget(feed, SYM, depth=10, rate=20)
    price = PriceWidget(feed, SYM, rate=20)
    status = FeedStatusWidget(wb, rate=10)
    try:
        assert wait_for(lambda: feed.status().trades > 20 and book.book_valid_shown, 15)
        feed.stop()
        assert wait_for(lambda: not book.pump.alive and not price.pump.alive, 10)
        assert "not running" in book.state_label.value
        assert "not running" in price.last_label.value
        # the book is frozen now: the chart shows exactly its cumulative top
        with feed.locked():
            bids, asks = feed.book(SYM).top(10)
        assert_depth_matches(book, bids, asks)
        assert book.pump.thread_name not in pump_threads()  # ended itself: no more frames
        # the status widget keeps running (other feeds may start) and shows the stop
        assert status.pump.alive
        assert wait_for(lambda: "<b>stopped</b>" in status.table.value, 10)
        (row,) = status.rows
        final = feed.status()
        assert (row.name, row.running, row.trades) == (final.name, False, final.trades)
    finally:
        for w in (book, price, status):
            w.close()
    assert pump_threads() == []


def test_the_status_table_spaces_its_columns_and_right_aligns_the_counts() -> None:
    html = status_html([])
    assert ".wb-status-table th,.wb-status-table td{padding:2px 14px" in html
    right = {int(n) for n in re.findall(r"td:nth-child\((\d+)\)\{text-align:right\}", html)}
    assert {COLUMNS[i - 1] for i in right} == {"msgs/s", "trades", "gaps", "resyncs", "quarantined"}
