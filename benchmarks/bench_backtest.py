"""Backtest: sma_cross (10/30, 10 bps taker fee) on one-minute bars, both engine paths.

The bars are a seeded random walk (1M by default; sma_cross trades on ~4% of them, the
busy case for the vectorized path, whose work grows with the decisions). Figures: the
event engine's run over bar events already built (what its target counts: bar events per
second; building them costs another ~0.5 µs a bar, counted in the end-to-end figure); the
vectorized path's run, ``signals()`` included (bars per second; best of 5, the first call
having compiled the kernel); and the whole ``backtest()`` call of each — the DataFrame
checked, the run, the result tables and metrics.

Baseline, same run, smaller N: the tutorial way — a Python loop over the DataFrame's rows
(``itertuples``) keeping the SMAs from pandas columns, position and cash in locals, with the
same next-open fills and fees. Both runs' trade counts are compared on the baseline's bars,
so the figures are of the same work.
Targets: ≥ 1,000,000 bar events/s (event engine), ≥ 20,000,000 bars/s (vectorized).
The two paths' result tables are compared, and must be identical.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from common import line, report

from workbench.backtest import backtest
from workbench.core.fills import BarFills
from workbench.engine import BarData, BarEngine
from workbench.engine.modes import vectorized
from workbench.strategy import SmaCross

N = 1_000_000
BASELINE_N = 100_000
FEE_BPS = 10.0


def random_bars(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0, 0.0005, n))
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="1min"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )


def baseline(bars: pd.DataFrame) -> tuple[float, int]:
    """Bars per second and round trips of the row loop."""
    frame = bars.assign(
        fast=bars["close"].rolling(10).mean(), slow=bars["close"].rolling(30).mean()
    )
    start = time.perf_counter()
    cash, position, pending, trades = 10_000.0, 0.0, 0, 0
    was_fast = was_slow = float("nan")
    rate = FEE_BPS / 10_000
    for row in frame.itertuples(index=False):
        if pending == 1:
            position = cash / (row.open * (1 + rate))
            cash = 0.0
        elif pending == -1:
            cash += position * row.open * (1 - rate)
            position, trades = 0.0, trades + 1
        pending = 0
        if was_fast <= was_slow and row.fast > row.slow and not position:
            pending = 1
        elif was_fast >= was_slow and row.fast < row.slow and position:
            pending = -1
        was_fast, was_slow = row.fast, row.slow
    return len(frame) / (time.perf_counter() - start), trades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--baseline-n", type=int, default=BASELINE_N)
    args = parser.parse_args()
    bars = random_bars(args.n)
    fills = BarFills(taker_fee_bps=FEE_BPS)
    data = BarData.from_frame(bars, 60_000_000)
    data.events()  # the events are input, built once per BarData: the engine's rate is its own
    engine = BarEngine(SmaCross(), data, fills, cash=10_000.0)
    start = time.perf_counter()
    run = engine.run()
    engine_rate = args.n / (time.perf_counter() - start)
    vector_seconds = []
    for _ in range(6):  # the first compiles (or loads) the kernel
        start = time.perf_counter()
        vectorized(SmaCross(), data, fills, cash=10_000.0)
        vector_seconds.append(time.perf_counter() - start)
    vector_rate = args.n / min(vector_seconds[1:])
    start = time.perf_counter()
    result = backtest("sma_cross", bars, interval="1m", fills=fills)
    whole_rate = args.n / (time.perf_counter() - start)
    start = time.perf_counter()
    fast = backtest("sma_cross", bars, interval="1m", fills=fills, mode="vectorized")
    whole_vector_rate = args.n / (time.perf_counter() - start)
    identical = all(
        getattr(result, name).equals(getattr(fast, name))
        for name in ("orders", "fills", "trades", "equity")
    )
    small = bars.iloc[: args.baseline_n]
    base, base_trades = baseline(small)
    ours_trades = len(backtest("sma_cross", small, interval="1m", fills=fills).trades)
    same = ours_trades == base_trades and len(run.trips) == len(result.trades)
    line("event engine, sma_cross", engine_rate, "bars/s", baseline=base, target=">= 1,000,000")
    line("vectorized, sma_cross", vector_rate, "bars/s", baseline=base, target=">= 20,000,000")
    line("backtest() end to end, event", whole_rate, "bars/s", baseline=base)
    line("backtest() end to end, vectorized", whole_vector_rate, "bars/s", baseline=base)
    print(f"same round trips as the baseline on its bars: {same} ({ours_trades})", flush=True)
    print(f"vectorized tables identical to the event engine's: {identical}", flush=True)
    report(
        "backtest",
        {
            "bars": args.n,
            "engine_bars_per_sec": engine_rate,
            "vectorized_bars_per_sec": vector_rate,
            "backtest_bars_per_sec": whole_rate,
            "backtest_vectorized_bars_per_sec": whole_vector_rate,
            "baseline_bars_per_sec": base,
            "baseline_bars": len(small),
            "ratio": engine_rate / base,
            "trades": len(result.trades),
            "same_trades_as_baseline": same,
            "vectorized_identical": identical,
        },
    )
    if not (same and identical):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
