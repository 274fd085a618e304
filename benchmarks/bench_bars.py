"""Bars: 10M trades in a DuckDB file → 1-minute bars, and the incremental update of one hour.

1. ``update_bars(store, "1m", full=True)``: every bar recomputed from 10M trades and written
   to the ``bars`` table. Baseline, same run: fetch the trades into pandas (``.df()``) and
   compute the same bars with a pandas groupby (first/max/min/last, sums, counts).
2. Incremental: the stored bars stop an hour (then 10 minutes) before the last trade and
   ``update_bars(store, "1m")`` brings them up to date, recomputing from the last stored
   bucket on. Reset and repeated; the median is reported.
3. Live tail: the same call when the bars are already current (the last bucket only).

Targets: full ≤ 0.5 s and ≥ 4x faster than the baseline; incremental hour ≤ 10 ms.
The trades: 2 symbols, 10M trades over SPAN_HOURS (~116 trades/s, ~417k per hour, a busy
day on a major venue), in timestamp order as a recorder writes them.

Prints one line per measurement and writes benchmarks/results/bars.json.
Usage: python benchmarks/bench_bars.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from common import line, report

from workbench.analysis.bars import update_bars
from workbench.store import Store

TRADES = 10_000_000
SPAN_HOURS = 24
T0 = 1_763_712_000_000_000  # 2025-11-21 08:00:00 UTC, µs
STEP = SPAN_HOURS * 3_600_000_000 // TRADES  # µs between trades
REPEATS = 9


def insert_trades(store: Store, first: int, stop: int) -> None:
    """Trades ``first`` ≤ i < ``stop`` in one set-based INSERT (a random-walk-ish price)."""
    with store.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO trades
                SELECT 'sim', CASE WHEN i % 3 = 0 THEN 'ETH-USD' ELSE 'BTC-USD' END,
                       make_timestamp({T0} + i * {STEP}), make_timestamp({T0} + i * {STEP} + 400),
                       30000 + sin(i / 5000.0) * 300 + (hash(i) % 1000) * 0.01,
                       ((hash(i * 7) % 1000) + 1) * 0.001,
                       CASE WHEN hash(i * 3) % 2 = 0 THEN 'buy' ELSE 'sell' END, i::VARCHAR
                FROM range({first}, {stop}) r(i)"""
        )


def pandas_bars(store: Store) -> pd.DataFrame:
    """The baseline: fetch the trades, then a pandas groupby on the minute."""
    trades = store.sql("SELECT exchange, symbol, ts, price, size, side FROM trades")
    trades["bucket"] = trades["ts"].dt.floor("1min")
    trades["notional"] = trades["price"] * trades["size"]
    buy = trades["side"] == "buy"
    trades["buy_volume"] = trades["size"].where(buy, 0.0)
    trades["sell_volume"] = trades["size"].where(~buy, 0.0)
    bars = trades.groupby(["exchange", "symbol", "bucket"], sort=True).agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("size", "sum"),
        notional=("notional", "sum"),
        trades=("price", "size"),
        buy_volume=("buy_volume", "sum"),
        sell_volume=("sell_volume", "sum"),
    )
    bars["vwap"] = bars["notional"] / bars["volume"]
    return bars


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bars.duckdb") as store:
        print(f"generating {TRADES:,} trades ...", flush=True)
        insert_trades(store, 0, TRADES)
        full_times = timed(lambda: update_bars(store, "1m", full=True), 5)
        bars = int(store.sql("SELECT count(*) AS n FROM bars")["n"][0])
        base_times = timed(lambda: pandas_bars(store), 2)
        updates = {minutes: incremental(store, minutes) for minutes in (60, 10)}
        tail_times = timed(lambda: update_bars(store, "1m"), REPEATS)
    ours, base = min(full_times), min(base_times)
    line(
        f"{TRADES:,} trades -> {bars:,} 1m bars (DuckDB, written to bars)",
        ours,
        "s",
        baseline=base,
        target="<= 0.5 s, >= 4x",
        higher_is_better=False,
    )
    figures: dict[str, object] = {
        "trades": TRADES,
        "span_hours": SPAN_HOURS,
        "bars": bars,
        "full_s": ours,
        "full_s_runs": full_times,
        "baseline_pandas_s": base,
        "ratio": base / ours,
    }
    for minutes, (times, new) in updates.items():
        median = statistics.median(times) * 1e3
        line(
            f"incremental update of the last {minutes} min ({new:,} trades read), median",
            median,
            "ms",
            target="<= 10 ms" if minutes == 60 else "",
            higher_is_better=False,
        )
        figures[f"last_{minutes}min_trades"] = new
        figures[f"last_{minutes}min_ms_median"] = median
        figures[f"last_{minutes}min_ms_min"] = min(times) * 1e3
    tail = statistics.median(tail_times) * 1e3
    line("live tail update (bars already current), median", tail, "ms")
    figures["tail_ms_median"] = tail
    report("bars", figures)


def incremental(store: Store, minutes: int) -> tuple[list[float], int]:
    """Times of ``update_bars`` when the stored bars stop ``minutes`` before the last trade.

    Deleting the newest bars recreates the state of a store whose trades arrived since its
    last update; the update then reads the trades from the last stored bucket on (returned
    as the second item).
    """
    times = []
    for _ in range(REPEATS):
        store.sql(
            "DELETE FROM bars WHERE ts > (SELECT max(ts) FROM bars) - to_minutes(?)", [minutes]
        )
        read = store.sql("SELECT count(*) AS n FROM trades WHERE ts >= (SELECT max(ts) FROM bars)")
        start = time.perf_counter()
        update_bars(store, "1m")
        times.append(time.perf_counter() - start)
    return times, int(read["n"][0])


if __name__ == "__main__":
    main()
