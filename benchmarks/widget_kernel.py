"""Kernel-side half of bench_widgets.py: imported and called inside a real ipykernel.

Everything here runs in the kernel, so widget state goes through the kernel's real comm
(serialization, session signing, ZMQ iopub). Each entry point returns plain data that the
driver reads back as JSON through ``user_expressions``.

The naive baseline widgets are the tutorial way to build the same views: rebuild everything
with pandas each frame (cumulative depth, rolling SMAs over the whole window, a resample for
the volume bars), one mark per line, and every trait assigned separately without
``hold_sync``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import bqplot
import ipywidgets
import msgspec
import numpy as np
import pandas as pd
from IPython.display import display

from workbench.feeds.feed import Feed
from workbench.notebook.widgets import OrderBookWidget, PriceWidget
from workbench.sim.market import Market
from workbench.sim.market import Trade as SimTrade
from workbench.workbench import Workbench


class Discard:
    """Sink of a replayed feed: its rows are not what these benchmarks measure."""

    fault: str | None = None

    def __init__(self) -> None:
        self.ingest_seqs = itertools.count(1)

    def submit(self, table: str, columns: dict[str, Any]) -> None:
        pass

    def wait_for_room(self, timeout: float) -> bool:
        return True


class Replay:
    """A real Feed fed the simulator's messages in-process (no socket): exact, repeatable."""

    def __init__(self, symbol: str, seed: int = 11) -> None:
        self.symbol = symbol
        self.market = Market(seed, [symbol])
        self.feed = Feed(
            "sim", [symbol], Discard(), ws_url="ws://127.0.0.1:9/ws", rest_url="http://127.0.0.1:9"
        )
        self.feed.stream.on_connected(1)
        self.feed.stream.on_messages(1, [msgspec.json.encode(self.market.snapshot(symbol))], 0)

    def advance(self, trades: int) -> None:
        """Step the market until ``trades`` more trades (and the book changes around them)."""
        payloads = []
        seen = 0
        while seen < trades:
            for message in self.market.step(self.symbol, time.time_ns() // 1000):
                payloads.append(msgspec.json.encode(message))
                seen += isinstance(message, SimTrade)
        self.feed.stream.on_messages(1, payloads, time.time_ns() // 1000)


class NaiveBook:
    def __init__(self, feed: Feed, symbol: str, depth: int) -> None:
        self.feed, self.symbol, self.depth = feed, symbol, depth
        x, y = bqplot.LinearScale(), bqplot.LinearScale(min=0.0)
        self.bid_line = bqplot.Lines(scales={"x": x, "y": y}, fill="bottom")
        self.ask_line = bqplot.Lines(scales={"x": x, "y": y}, fill="bottom")
        self.labels = [ipywidgets.Label() for _ in range(4)]
        self.valid = ipywidgets.HTML()
        self.ladder = ipywidgets.HTML()
        self.figure = bqplot.Figure(marks=[self.bid_line, self.ask_line])
        self.box = ipywidgets.VBox([self.figure, self.valid, *self.labels, self.ladder])

    def update(self) -> None:
        with self.feed.locked():
            book = self.feed.book(self.symbol)
            bids, asks = book.top(self.depth)
            valid = book.valid
        b = pd.DataFrame(bids, columns=["price", "size"])
        a = pd.DataFrame(asks, columns=["price", "size"])
        b["total"] = b["size"].cumsum()
        a["total"] = a["size"].cumsum()
        self.bid_line.x = b["price"].to_numpy()
        self.bid_line.y = b["total"].to_numpy()
        self.ask_line.x = a["price"].to_numpy()
        self.ask_line.y = a["total"].to_numpy()
        best_bid, best_ask = b["price"].iloc[0], a["price"].iloc[0]
        self.labels[0].value = f"bid {best_bid}"
        self.labels[1].value = f"ask {best_ask}"
        self.labels[2].value = f"spread {best_ask - best_bid}"
        self.labels[3].value = f"mid {(best_ask + best_bid) / 2}"
        self.valid.value = "book valid" if valid else "BOOK INVALID"
        self.ladder.value = pd.concat([a.iloc[::-1], b]).to_html(index=False)

    def close(self) -> None:
        for w in (self.bid_line, self.ask_line, self.figure, self.valid, self.ladder, self.box):
            w.close()
        for label in self.labels:
            label.close()


class NaivePrice:
    def __init__(self, feed: Feed, symbol: str, sma: tuple[int, ...], window: int) -> None:
        self.feed, self.symbol, self.sma = feed, symbol, sma
        self.rows: deque[tuple[int, float, float]] = deque(maxlen=window)
        self.cursor = 0
        x, y = bqplot.DateScale(), bqplot.LinearScale()
        self.price_line = bqplot.Lines(scales={"x": x, "y": y})
        self.sma_lines = [bqplot.Lines(scales={"x": x, "y": y}) for _ in sma]
        self.bars = bqplot.Bars(scales={"x": x, "y": bqplot.LinearScale()})
        self.last = ipywidgets.HTML()
        self.figure = bqplot.Figure(marks=[self.price_line, *self.sma_lines, self.bars])
        self.box = ipywidgets.VBox([self.last, self.figure])

    def update(self) -> None:
        self.cursor, new = self.feed.recent_trades(self.symbol, self.cursor)
        self.rows.extend((t.ts, t.price, t.size) for t in new)
        frame = pd.DataFrame(list(self.rows), columns=["ts", "price", "size"])
        times = pd.to_datetime(frame["ts"], unit="us")
        self.price_line.x = times.to_numpy()
        self.price_line.y = frame["price"].to_numpy()
        for n, line in zip(self.sma, self.sma_lines, strict=True):
            line.x = times.to_numpy()
            line.y = frame["price"].rolling(n).mean().to_numpy()
        volume = frame.set_index(times)["size"].resample("1s").sum()
        self.bars.x = volume.index.to_numpy()
        self.bars.y = volume.to_numpy()
        self.last.value = f"last {frame['price'].iloc[-1]}"

    def close(self) -> None:
        for w in (self.price_line, *self.sma_lines, self.bars, self.figure, self.last, self.box):
            w.close()


def _ms(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1e3
    return {
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def update_cost(ticks: int, trades_per_tick: int, depth: int, window: int) -> dict[str, Any]:
    """(a): per-frame cost of ours and the naive widgets on the same changing book/tape."""
    replay = Replay("BTC-USD")
    replay.advance(window + 500)  # a full window from the first frame on
    book = OrderBookWidget(replay.feed, "BTC-USD", depth=depth, levels=depth, autostart=False)
    price = PriceWidget(replay.feed, "BTC-USD", window=window, autostart=False)
    naive_book = NaiveBook(replay.feed, "BTC-USD", depth)
    naive_price = NaivePrice(replay.feed, "BTC-USD", (20, 50), window)
    for w in (book, price, naive_book, naive_price):
        w.update()  # first frame: initial load, not the steady state measured here
    ours: dict[str, list[float]] = {"book": [], "price": [], "both": []}
    naive: dict[str, list[float]] = {"book": [], "price": [], "both": []}
    for tick in range(ticks):
        replay.advance(trades_per_tick)
        # alternate who goes first, so neither always pays for a cold cache
        order = ((book, price, ours), (naive_book, naive_price, naive))
        for b, p, out in order if tick % 2 else order[::-1]:
            # Let the kernel's IO thread finish sending the previous frame first, as it has
            # between real frames 100 ms apart; else one side pays for the other's backlog.
            time.sleep(0.005)
            t0 = time.perf_counter()
            b.update()
            t1 = time.perf_counter()
            p.update()
            t2 = time.perf_counter()
            out["book"].append(t1 - t0)
            out["price"].append(t2 - t1)
            out["both"].append(t2 - t0)
    points = int(price.lines.y.shape[-1])
    levels = len(book.ladder_rows)
    for w in (book, price, naive_book, naive_price):
        w.close()
    return {
        "ticks": ticks,
        "trades_per_tick": trades_per_tick,
        "points": points,
        "levels": levels,
        "ours": {k: _ms(v) for k, v in ours.items()},
        "naive": {k: _ms(v) for k, v in naive.items()},
    }


class Stream:
    """(b)/(c): a Workbench feed on the simulator process, then widgets pumping on it."""

    def __init__(self, db: str, ws_url: str, rest_url: str, symbols: list[str]) -> None:
        self.wb = Workbench.open(Path(db))
        self.feed = self.wb.start_feed("sim", symbols, ws_url=ws_url, rest_url=rest_url)
        self.symbol = symbols[0]
        self.widgets: list[OrderBookWidget | PriceWidget] = []
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="bench-sampler", daemon=True)

    def counter(self) -> dict[str, float]:
        """The feed's message count now: two of these give its rate in between."""
        return {"messages": self.feed.messages, "t": time.monotonic()}

    def start_widgets(self, rate: float, depth: int, window: int) -> None:
        self.widgets = [
            OrderBookWidget(self.feed, self.symbol, depth=depth, rate=rate),
            PriceWidget(self.feed, self.symbol, window=window, rate=rate),
        ]
        display(*self.widgets)
        self._sampler.start()

    def _sample(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(1.0 - (time.monotonic() - start) % 1.0):
            sample: dict[str, Any] = {"t": time.monotonic() - start, "messages": self.feed.messages}
            for w in self.widgets:
                s = w.stats
                sample[type(w).__name__] = {
                    "ticks": s.ticks,
                    "skipped": s.skipped,
                    "errors": s.errors,
                    "lag_s": s.lag_seconds,
                    "render_s": s.render_seconds,
                }
            self.samples.append(sample)

    def finish(self) -> dict[str, Any]:
        self._stop.set()
        self._sampler.join(5)
        final = {
            type(w).__name__: {
                "render_p50_ms": w.stats.render_p50_ms,
                "render_p99_ms": w.stats.render_p99_ms,
                "render_max_ms": w.stats.render_max_ms,
                "lag_max_ms": w.stats.lag_max_ms,
                "last_error": w.stats.last_error,
            }
            for w in self.widgets
        }
        for w in self.widgets:
            w.close()
        pumps = [t.name for t in threading.enumerate() if t.name.startswith("wb-pump-")]
        status = self.feed.status()
        self.wb.close()
        return {
            "samples": self.samples,
            "final": final,
            "pumps_left": pumps,
            "gaps": status.gaps,
            "quarantined": status.quarantined,
        }
