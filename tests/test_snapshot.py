"""Static snapshots of the widgets' last frames: pure renderers on plain frame data, and the
display update a real kernel sends when a widget closes."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython import display as ipd
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from tests.e2e import wait_for
from tests.test_extension import execute, workbench_kernel
from tests.test_widgets import SYM, Replay
from workbench.core import axes
from workbench.events import Trade
from workbench.notebook.widgets import OrderBookWidget
from workbench.notebook.widgets.snapshot import (
    BookFrame,
    PriceFrame,
    book_snapshot,
    plain,
    price_snapshot,
    status_snapshot,
    tick_labels,
)

SVG = "{http://www.w3.org/2000/svg}"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
T0 = 1_763_712_000_000_000  # 2025-11-21 08:00:00 UTC
PLAIN_NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$")
TIME_LABEL = re.compile(r"^(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d(\.\d{3})?$")


def texts(svg: str, cls: str) -> list[str]:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text") if cls in (t.get("class") or "")]


def price_frame(n: int, *, start: float = 30_000.0, step_us: int = 50_000) -> PriceFrame:
    rng = np.random.default_rng(5)
    times = T0 + np.arange(n, dtype=np.int64) * step_us
    prices = np.round(start + np.cumsum(rng.normal(0, 2, n)) * 2) / 2  # 0.5 tick
    sma = np.full(n, np.nan)
    if n >= 20:
        sma[19:] = np.convolve(prices, np.ones(20) / 20, "valid")
    last = (
        Trade(
            "sim", "BTC-USD", int(times[-1]), int(times[-1]), float(prices[-1]), 0.25, "buy", "t1"
        )
        if n
        else None
    )
    return PriceFrame(
        "BTC-USD",
        "sim-1",
        times,
        np.vstack([prices, sma]) if n else np.zeros((2, 0)),
        ["price", "SMA 20"],
        ["#1f4e79", "#ff8f00"],
        rng.uniform(0.01, 3, n),
        last,
        running=False,
    )


def book_frame(levels: int) -> BookFrame:
    bids = [(29_999.5 - i * 0.5, 1.0 + i) for i in range(levels)]
    asks = [(30_000.0 + i * 0.5, 2.0 + i) for i in range(levels)]
    return BookFrame(
        "BTC-USD", "sim-1", bids, asks, depth=20, levels=10, valid=True, running=True, ts=T0
    )


def test_the_price_snapshot_is_valid_svg_with_plain_ticks_and_utc_times() -> None:
    bundle = price_snapshot(price_frame(400))
    svg = bundle["image/svg+xml"]
    y_ticks = texts(svg, "y-tick")
    x_ticks = texts(svg, "x-tick")
    assert len(y_ticks) >= 5 and all(PLAIN_NUMBER.match(t) for t in y_ticks), y_ticks
    assert any("," in t for t in y_ticks)  # thousands separated: 30,000.0, never 3.0e+04
    assert x_ticks and all(TIME_LABEL.match(t) for t in x_ticks), x_ticks
    assert x_ticks[0].startswith("08:00:")
    assert texts(svg, "legend") == ["price", "SMA 20"]
    last = price_frame(400).last
    assert last is not None
    assert texts(svg, "last") == [f"last {plain(last.price, 1)} (buy 0.25)"]
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{SVG}polyline"))) == 2  # price and SMA
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert 30 <= len(bars) <= 61
    assert "400 trades" in bundle["text/plain"] and "SMA 20" in bundle["text/plain"]


def test_the_html_shows_the_same_svg_as_an_image_a_sanitizer_keeps() -> None:
    bundle = price_snapshot(price_frame(100))
    (src,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', bundle["text/html"])
    assert base64.b64decode(src).decode() == bundle["image/svg+xml"]
    assert "<svg" not in bundle["text/html"] and "<style" not in bundle["text/html"]


def test_the_price_line_is_drawn_where_the_tick_labels_say() -> None:
    """The newest price sits at the height the y ticks give it (no offset, no flip)."""
    frame = price_frame(300)
    root = ET.fromstring(price_snapshot(frame)["image/svg+xml"])
    ticks = [t for t in root.iter(f"{SVG}text") if "y-tick" in (t.get("class") or "")][:2]
    (v0, y0), (v1, y1) = [
        (float((t.text or "").replace(",", "")), float(t.get("y") or 0) - 4) for t in ticks
    ]
    assert v1 > v0 and y1 < y0  # higher prices drawn higher
    price_line = list(root.iter(f"{SVG}polyline"))[-1]  # drawn last: on top
    assert price_line.get("stroke") == frame.colors[0]
    last_y = float((price_line.get("points") or "").split()[-1].split(",")[1])
    expected = y0 + (frame.lines[0, -1] - v0) / (v1 - v0) * (y1 - y0)
    assert abs(last_y - expected) <= 0.2


@pytest.mark.parametrize("n", [0, 1])
def test_a_price_frame_without_data_renders_a_clear_no_data_snapshot(n: int) -> None:
    bundle = price_snapshot(price_frame(n))
    assert texts(bundle["image/svg+xml"], "no-data") == [
        "no data yet: no trades of BTC-USD had arrived"
    ]
    assert bundle["text/plain"].endswith("no data yet")


def test_large_and_tiny_prices_stay_plain() -> None:
    for start in (0.000123, 1_234_567.0):
        frame = price_frame(200, start=start)
        frame = PriceFrame(**{**frame.__dict__, "lines": frame.lines * (start / 30_000)})
        y_ticks = texts(price_snapshot(frame)["image/svg+xml"], "y-tick")
        assert y_ticks and all(PLAIN_NUMBER.match(t) for t in y_ticks), y_ticks
    assert tick_labels([0.0, 0.00005, 0.0001]) == ["0.00000", "0.00005", "0.00010"]
    assert tick_labels([0.0, 50_000.0, 100_000.0]) == ["0", "50,000", "100,000"]


def test_time_ticks_add_the_date_when_the_window_spans_days() -> None:
    frame = price_frame(100, step_us=3_600_000_000)  # 100 hours
    x_ticks = texts(price_snapshot(frame)["image/svg+xml"], "x-tick")
    assert x_ticks and all(re.match(r"^2025-11-\d\d \d\d:\d\d:\d\d$", t) for t in x_ticks)


def test_the_book_snapshot_draws_depth_from_zero_and_the_ladder_as_a_table() -> None:
    bundle = book_snapshot(book_frame(20))
    svg = bundle["image/svg+xml"]
    y_ticks = texts(svg, "y-tick")
    assert y_ticks[0] == "0" and all(PLAIN_NUMBER.match(t) for t in y_ticks)
    top = max(float(t.replace(",", "")) for t in y_ticks)
    assert top >= sum(2.0 + i for i in range(20))  # the deepest ask fits under the top
    x_ticks = texts(svg, "x-tick")
    assert x_ticks and all(PLAIN_NUMBER.match(t) and "." in t for t in x_ticks), x_ticks
    assert len([p for p in ET.fromstring(svg).iter(f"{SVG}polygon")]) == 2  # bids, asks
    html = bundle["text/html"]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html)
    assert len(rows) == 1 + 10 + 1 + 10  # header, asks, spread, bids: `levels` a side
    assert "30,004.5" in rows[1] and "30,000.0" in rows[10]  # asks: highest first
    assert "0.5" in rows[11] and "spread" in rows[11]
    assert "29,999.5" in rows[12]
    assert "<style" not in html
    assert bundle["text/plain"] == (
        "BTC-USD · sim-1 order book (snapshot · 08:00:00 UTC): bid 29,999.5, ask 30,000.0, "
        "spread 0.5, mid 29,999.75; book valid; 20 bid / 20 ask levels"
    )


def test_an_empty_book_renders_a_clear_no_data_snapshot() -> None:
    bundle = book_snapshot(book_frame(0))
    assert texts(bundle["image/svg+xml"], "no-data") == [
        "no data yet: no book levels of BTC-USD had arrived"
    ]
    assert "<table" not in bundle["text/html"]
    assert bundle["text/plain"].endswith("no data yet")


def test_the_status_snapshot_keeps_the_table_and_a_line_per_feed() -> None:
    bundle = status_snapshot("<table><tr><td>sim-1</td></tr></table>", ["sim-1: 5 msgs"])
    assert "<td>sim-1</td>" in bundle["text/html"]
    assert bundle["text/plain"] == "feed status (snapshot):\nsim-1: 5 msgs"
    assert status_snapshot("", [])["text/plain"].endswith("no feeds started")


def test_depth_curves_and_digits_come_from_the_shared_axes_module() -> None:
    prices, totals = axes.depth_curve([(10.0, 1.0), (9.5, 2.0)])
    assert prices.tolist() == [10.0, 9.5] and totals.tolist() == [1.0, 3.0]
    assert axes.decimals(np.array([0.5, 1.25])) == 2


# -- a real kernel ----------------------------------------------------------------------------


def iopub(client: Any, code: str) -> list[dict[str, Any]]:
    """Run ``code`` in the kernel; the display messages it caused."""
    seen: list[dict[str, Any]] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("display_data", "update_display_data", "execute_result"):
            seen.append(msg)

    reply = client.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return seen


@pytest.mark.parametrize("close", ["w.close()", "%unload_ext workbench"])
def test_closing_a_widget_in_a_kernel_updates_its_display_with_the_snapshot(
    tmp_path: Path, close: str
) -> None:
    with workbench_kernel(tmp_path, tmp_path / "k.duckdb") as (_, client):
        execute(client, "%wb feed start sim BTC-USD")
        (shown,) = iopub(client, "%wb price BTC-USD")
        assert shown["msg_type"] == "display_data"  # under a display id, not execute_result
        display_id = shown["content"]["transient"]["display_id"]
        assert WIDGET_VIEW in shown["content"]["data"]
        execute(client, "w = _")
        assert wait_for(lambda: int(execute(client, "print(len(w.trades))")) >= 50, 30)
        (update,) = iopub(client, close)
        assert update["msg_type"] == "update_display_data"
        assert update["content"]["transient"]["display_id"] == display_id
        data = update["content"]["data"]
        assert WIDGET_VIEW not in data
        assert set(data) == {"text/html", "image/svg+xml", "text/plain"}
        assert texts(data["image/svg+xml"], "no-data") == []
        assert len(texts(data["image/svg+xml"], "y-tick")) >= 2
        # a closed widget displayed again shows its snapshot
        (again,) = iopub(client, "w")
        assert "image/svg+xml" in again["content"]["data"]
        assert WIDGET_VIEW not in again["content"]["data"]


# -- close wiring, in-process -----------------------------------------------------------------


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What IPython's display machinery sends, captured (a kernel would send it to iopub)."""
    shell = InteractiveShell.instance()
    publisher = CapturingDisplayPublisher()
    monkeypatch.setattr(shell, "display_pub", publisher)
    return publisher.outputs


class BrokenSnapshot(OrderBookWidget):
    def _snapshot(self) -> Any:
        raise ValueError("boom: cannot draw")


def test_a_displayed_widget_closes_into_its_snapshot_and_redisplays_as_it(
    published: list[dict[str, Any]],
) -> None:
    replay = Replay()
    widget = OrderBookWidget(replay.feed, SYM, autostart=False)
    ipd.display(widget)
    (shown,) = published
    display_id = shown["transient"]["display_id"]
    assert WIDGET_VIEW in shown["data"] and not shown["update"]
    replay.advance(30)  # new levels after the last frame: close draws one more first
    widget.close()
    update = published[-1]
    assert update["update"] and update["transient"] == {"display_id": display_id}
    assert "no data yet" not in update["data"]["text/plain"]
    with replay.feed.locked():
        best_bid = replay.feed.book(SYM).top(1)[0][0][0]
    assert f"bid {plain(best_bid, 1)}" in update["data"]["text/plain"]
    ipd.display(widget)  # closed: shows the snapshot, no view of a model that is gone
    assert WIDGET_VIEW not in published[-1]["data"] and "image/svg+xml" in published[-1]["data"]


def test_a_snapshot_that_fails_says_so_and_the_widget_still_closes(
    published: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    widget = BrokenSnapshot(Replay().feed, SYM, autostart=False)
    ipd.display(widget)
    inner = [widget.depth_chart, widget.ladder, widget.depth_line]
    widget.close()
    assert published[-1]["data"] == {
        "text/plain": f"{widget.pump.thread_name}: closed; snapshot failed: "
        "ValueError('boom: cannot draw')"
    }
    assert "snapshot failed" in caplog.text
    assert widget.comm is None and all(w.comm is None for w in inner)


def test_an_undisplayed_widget_closes_without_sending_anything(
    published: list[dict[str, Any]],
) -> None:
    OrderBookWidget(Replay().feed, SYM, autostart=False).close()
    assert published == []
