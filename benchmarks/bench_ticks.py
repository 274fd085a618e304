"""Trade/book backtest: a strategy reacting to every print of a replayed recording.

The recording is a day of one symbol from ``workbench synth`` (the simulator's price grid,
regimes, a top-10 book updated before every 10th trade): about 1M trades and 100k book
changes. The strategy keeps a 500-print moving average and, on every 51st cross of the
price through it, targets half its equity long or short (market orders, 20 ms latency,
5 bps taker fee, the book walked at arrival), so it reacts to every trade and trades ~300
times a day. Figures: ``backtest_ticks()`` end to end (the events read from the file by
``replay``, the engine, the result tables and metrics: what the target counts), and where
its time goes — ``replay`` alone, and the engine alone over events already in memory. Each
figure, the baseline's too, is the fastest of ``--repeat`` runs (3): the machine is shared.

Baseline, same run, same events: the tutorial way — one DataFrame of the trade and book
rows in ``ingest_seq`` order (read before the clock starts), a Python loop over it
(``itertuples``) keeping the book in two dicts, the same moving average, crosses and
decisions, orders held for the latency and then walked through the sorted book, position
and cash in locals, the equity marked each second. Both must take the same decisions.
Target: >= 300,000 events/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import TypeVar

import pandas as pd
from common import line, report

from workbench.backtest import backtest_ticks
from workbench.core.bookfills import BookFills
from workbench.core.indicators import StreamingSMA
from workbench.engine import Context
from workbench.engine.ticks import TickEngine
from workbench.events import Trade
from workbench.replay import replay
from workbench.sim.synth_command import synthesize
from workbench.store import Store
from workbench.strategy import Param, Strategy

TRADES = 1_000_000
SYMBOL = "BTC-USD"
CASH = 10_000.0
FILLS = BookFills(taker_fee_bps=5.0, latency_ms=20.0)
KINDS = ("trade", "book")
T = TypeVar("T")


class MeanCross(Strategy):
    """Half long above the moving average, half short below it, on every ``every``-th cross."""

    window = Param(500, low=2)
    every = Param(51, low=1)

    def on_start(self, ctx: Context) -> None:
        self.mean = StreamingSMA(self.window)
        self.above: bool | None = None
        self.crosses = 0

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        above = trade.price > self.mean.update(trade.price)
        if above is not self.above:
            self.above = above
            self.crosses += 1
            if not self.crosses % self.every:
                ctx.target(0.5 if above else -0.5)


def baseline_rows(path: Path) -> pd.DataFrame:
    """The trade and book rows in replay order, as the baseline loops over them."""
    with Store.open(path, read_only=True) as store:
        return store.sql(
            "SELECT ingest_seq, epoch_us(recv_ts) AS t, 'trade' AS kind, side, price, size, "
            "rowid AS r FROM trades WHERE symbol = ? UNION ALL "
            "SELECT ingest_seq, epoch_us(recv_ts), kind, side, price, size, rowid "
            "FROM book_deltas WHERE symbol = ? ORDER BY ingest_seq, kind = 'trade', r",
            [SYMBOL, SYMBOL],
        )


def baseline(rows: pd.DataFrame, window: int = 500, every: int = 51) -> tuple[int, int]:
    """The events and the decisions of the row loop."""
    mean = StreamingSMA(window)
    above: bool | None = None
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    pending: list[tuple[int, float]] = []  # (due, target)
    crosses = decisions = events = 0
    position, cash, last, seq = 0.0, CASH, 0.0, -1
    rate = FILLS.taker_fee_bps / 10_000
    marks: list[float] = []
    next_mark = int(rows.t.iloc[0]) // 1_000_000 * 1_000_000
    for row in rows.itertuples(index=False):
        t = row.t
        if row.ingest_seq != seq:
            seq, events = row.ingest_seq, events + 1
        while pending and pending[0][0] < t:
            _, target = pending.pop(0)
            buy = target * (cash + position * last) > position * last
            levels = sorted(asks.items()) if buy else sorted(bids.items(), reverse=True)
            if not levels:
                continue
            need = abs(target * (cash + position * levels[0][0]) / levels[0][0] - position)
            for price, size in levels:
                take = min(size, need)
                cash -= (take if buy else -take) * price + take * price * rate
                position += take if buy else -take
                need -= take
                if need <= 0:
                    break
        while t > next_mark:
            marks.append(cash + position * last)
            next_mark += 1_000_000
        kind = row.kind
        if kind == "trade":
            price = row.price
            now_above = price > mean.update(price)
            if now_above is not above:
                above = now_above
                crosses += 1
                if not crosses % every:
                    pending.append((t + FILLS.latency_us, 0.5 if now_above else -0.5))
                    decisions += 1
            last = price
        elif kind == "reset":
            bids.clear()
            asks.clear()
        else:
            levels_of = bids if row.side == "bid" else asks
            if row.size > 0:
                levels_of[row.price] = row.size
            else:
                levels_of.pop(row.price, None)
    return events, decisions


def best(repeat: int, measure: Callable[[], T]) -> tuple[float, T]:
    """The seconds of the fastest of ``repeat`` runs (the machine is shared: the slower ones
    met other work) and what it returned."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = measure()
        times.append(time.perf_counter() - start)
    return min(times), out


def replayed(path: Path) -> int:
    return sum(1 for _ in map(attrgetter("event"), replay(path, symbols=[SYMBOL], kinds=KINDS)))


def recording(path: Path, trades: int) -> int:
    synthesize(path, [SYMBOL], 1.0, trades_per_day=trades)
    with Store.open(path, read_only=True) as store:
        ((events,),) = store.sql(
            "SELECT (SELECT count(*) FROM trades) + "
            "(SELECT count(DISTINCT ingest_seq) FROM book_deltas)"
        ).to_numpy()
    return int(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=TRADES, help="trades in the day recorded")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "day.duckdb"
        events = recording(path, args.trades)
        whole, result = best(
            args.repeat,
            lambda: backtest_ticks(MeanCross, path, symbol=SYMBOL, fills=FILLS, cash=CASH),
        )
        read, _ = best(args.repeat, lambda: replayed(path))
        loaded = [a.event for a in replay(path, symbols=[SYMBOL], kinds=KINDS)]
        engine, run = best(
            args.repeat,
            lambda: TickEngine(MeanCross(), loaded, FILLS, symbol=SYMBOL, cash=CASH).run(),
        )
        rows = baseline_rows(path)
        looped, (base_events, base_decisions) = best(args.repeat, lambda: baseline(rows))
    rate, base = events / whole, base_events / looped
    same = len(result.orders) == len(run.orders) == base_decisions and base_events == events
    line("backtest_ticks() end to end", rate, "events/s", baseline=base, target=">= 300,000")
    line("  of which replay alone", events / read, "events/s")
    line("  of which the engine alone", events / engine, "events/s", baseline=base)
    print(
        f"{events:,} events, {len(result.orders)} orders, {len(result.trades)} round trips, "
        f"best of {args.repeat}; the baseline's decisions match: {same}",
        flush=True,
    )
    report(
        "ticks",
        {
            "events": events,
            "events_per_sec": rate,
            "replay_events_per_sec": events / read,
            "engine_events_per_sec": events / engine,
            "baseline_events_per_sec": base,
            "ratio": rate / base,
            "engine_ratio": events / engine / base,
            "orders": len(result.orders),
            "same_decisions_as_baseline": same,
        },
    )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
