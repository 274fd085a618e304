"""Cleaning 2 M trades inside DuckDB, against a naive pandas row loop measured in the same run.

Data: four symbols of synthetic trades (random-walk prices on a tick grid, a few per mille of
NULLs, non-positive values, spikes, late arrivals and exact copies) plus a handful of
quality-event windows, in a DuckDB file. Every rule runs with its default parameters.

- ours: ``clean_table`` (set-based SQL, writes clean_bench_trades, clean_flags, clean_windows).
- for reference: ``clean_frame``, the vectorized pandas path, on the same 2 M rows.
- baseline: what a first notebook draft does: ``iterrows`` for the row rules with Python sets
  for duplicates, ``rolling(...).apply`` with a Python function for the z-score and the
  Hampel filter, a row loop for gaps and stale runs; measured on the first BASELINE_ROWS rows
  and reported as rows/s. It skips the quality windows, clock skew, out-of-order and the fill
  policy, so it does less work than ours and the ratio is conservative.

Prints one line per figure and writes benchmarks/results/clean.json.
Usage: python benchmarks/bench_clean.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from common import line, report

from workbench.analysis.clean import clean_table
from workbench.core.clean import MAD_SCALE, CleanConfig, clean_frame
from workbench.store import Store

N = 2_000_000
BASELINE_ROWS = 40_000
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD")
T0 = pd.Timestamp("2024-03-01")
NOW = datetime(2024, 3, 3)


def make_trades(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    copied = rows // 2000
    n = rows - copied
    symbol = rng.choice(SYMBOLS, n)
    ts = T0.value // 1000 + np.cumsum(rng.integers(1, 60_000, n))
    recv = ts + rng.integers(200, 3_000, n)
    late = rng.random(n) < 0.001
    recv[late] += 8_000_000
    price = (100 + np.cumsum(rng.normal(0, 0.02, n))).round(2)
    spike = rng.random(n) < 0.0005
    price[spike] *= 1.08
    price[rng.random(n) < 0.0005] = 0.0
    frame = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": symbol,
            "ts": pd.to_datetime(ts, unit="us"),
            "recv_ts": pd.to_datetime(recv, unit="us"),
            "price": price,
            "size": rng.integers(1, 100, n) / 100,
            "side": rng.choice(["buy", "sell"], n),
            "trade_id": np.arange(n).astype(str),
        }
    )
    frame.loc[rng.random(n) < 0.001, "size"] = None
    return pd.concat([frame, frame.sample(copied, random_state=seed)], ignore_index=True)


def make_events() -> pd.DataFrame:
    at = [T0 + pd.Timedelta(minutes=m) for m in (5, 9, 30, 31, 60, 62)]
    return pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": ["BTC-USD", "BTC-USD", None, None, "SOL-USD", "SOL-USD"],
            "ts": at,
            "kind": ["gap", "resync", "disconnect", "resync", "checksum", "resync"],
            "detail": "{}",
        }
    ).astype({"ts": "datetime64[us]"})


def naive_clean(frame: pd.DataFrame, config: CleanConfig) -> int:
    """Row by row, as a first draft would; returns the rows it keeps."""
    assert config.zscore is not None and config.hampel is not None
    seen: set[tuple[object, ...]] = set()
    ids: set[tuple[object, ...]] = set()
    keep = []
    for index, row in frame.iterrows():
        if pd.isna(row["ts"]) or pd.isna(row["trade_id"]) or pd.isna(row["size"]):
            continue
        if row["price"] <= 0 or row["size"] <= 0 or row["ts"] > NOW:
            continue
        copy = tuple(row)
        key = (row["exchange"], row["symbol"], row["trade_id"])
        if copy in seen or key in ids:
            continue
        seen.add(copy)
        ids.add(key)
        keep.append(index)
    kept = frame.loc[keep].sort_values(["symbol", "ts"])
    window, k = config.zscore.window, config.hampel.half_window

    def zscore(values: np.ndarray) -> float:
        history, x = values[:-1], values[-1]
        std = statistics.stdev(history)
        return abs(x - statistics.mean(history)) / std if std else 0.0

    def hampel(values: np.ndarray) -> float:
        median = statistics.median(values)
        mad = statistics.median(abs(v - median) for v in values)
        return abs(values[k] - median) / (MAD_SCALE * mad) if mad else 0.0

    for _, prices in kept.groupby("symbol")["price"]:
        prices.rolling(window + 1).apply(zscore, raw=True)
        prices.rolling(2 * k + 1, center=True).apply(hampel, raw=True)
    previous: dict[str, tuple[pd.Timestamp, float, float]] = {}
    run: dict[str, int] = {}
    gaps = stale = 0
    for row in kept.itertuples():
        before = previous.get(row.symbol)
        if before is not None and row.ts - before[0] > config.max_gap:
            gaps += 1
        same = before is not None and before[1:] == (row.price, row.size)
        run[row.symbol] = run.get(row.symbol, 0) + 1 if same else 1
        stale += same and run[row.symbol] >= (config.stale_rows or 0)
        previous[row.symbol] = (row.ts, row.price, row.size)
    return len(kept)


def main() -> dict[str, float]:
    config = CleanConfig()
    frame = make_trades(N)
    events = make_events()
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        with store.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_trades AS SELECT * FROM frame")
            cursor.execute("INSERT INTO quality_events BY NAME SELECT * FROM events")
        started = time.perf_counter()
        stored = clean_table(store, "trades", config, source="bench_trades", now=NOW)
        ours = N / (time.perf_counter() - started)

    started = time.perf_counter()
    pure = clean_frame(frame, "trades", config, now=NOW, quality_events=events)
    vectorized = N / (time.perf_counter() - started)
    assert pure.report.counts.equals(stored.counts), "the two paths disagree"

    sample = frame.iloc[:BASELINE_ROWS]
    started = time.perf_counter()
    naive_clean(sample, config)
    naive = BASELINE_ROWS / (time.perf_counter() - started)

    print(stored.summary())
    line(f"clean {N:,} trades in DuckDB", ours, "rows/s", baseline=naive)
    line(f"clean {N:,} trades, vectorized pandas (clean_frame)", vectorized, "rows/s")
    line(f"naive iterrows + rolling.apply ({BASELINE_ROWS:,} rows)", naive, "rows/s")
    figures = {
        "rows": N,
        "duckdb_rows_per_s": ours,
        "pandas_vectorized_rows_per_s": vectorized,
        "baseline_rows": BASELINE_ROWS,
        "baseline_rows_per_s": naive,
        "ratio": ours / naive,
    }
    report("clean", figures)
    return figures


if __name__ == "__main__":
    main()
