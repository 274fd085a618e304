"""Sweep: sma_cross over a 100-point grid (fast 5..50 × slow 60..150) on one-minute bars.

Two figures, each against a baseline measured in the same run:

- Speedup from 1 to 2 workers (loky), on the event engine, over the whole grid: the
  sequential sweep is the baseline. ``--event-points 10`` runs a slice of the grid (quicker,
  but the workers' start-up — imports, mapping the bars, building the bar events — then
  weighs several times more).
- Bar evaluations per second (points × bars / wall time) of the whole grid on 2 workers
  through the vectorized path, against the event engine's rate on 2 workers.

The tables of the 1- and 2-worker sweeps, and of both paths, must be identical.
Targets: speedup ≥ 1.7×; vectorized ≥ 10,000,000 bar-evaluations/s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from bench_backtest import random_bars
from common import line, report

from workbench.backtest import sweep
from workbench.core.fills import BarFills

N = 1_000_000
GRID: dict[str, object] = {"fast": "5:50:5", "slow": "60:150:10"}
FILLS = BarFills(taker_fee_bps=10.0)


def timed(
    grid: dict[str, object], bars: pd.DataFrame, n_jobs: int, mode: str = "event"
) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    result = sweep(
        "sma_cross",
        grid,
        bars,
        interval="1m",
        fills=FILLS,
        n_jobs=n_jobs,
        mode=mode,
        progress=False,
    )
    return time.perf_counter() - start, result.table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--event-points", type=int, default=100)
    args = parser.parse_args()
    bars = random_bars(args.n)
    points = 10 * 10
    fasts = [5 * (k + 1) for k in range(max(1, args.event_points // 10))]
    event_grid: dict[str, object] = {"fast": fasts, "slow": GRID["slow"]}  # the grid's head
    event_points = 10 * len(fasts)
    one, table_one = timed(event_grid, bars, n_jobs=1)
    two, table_two = timed(event_grid, bars, n_jobs=2)
    speedup = one / two
    vector, table_vector = timed(GRID, bars, n_jobs=2, mode="vectorized")
    vector_rate = points * args.n / vector
    event_rate = event_points * args.n / two
    same = table_one.equals(table_two) and table_vector.head(event_points).equals(table_one)
    line(f"event sweep of {event_points} points, 2 workers vs 1", speedup, "x", target=">= 1.7")
    line(
        f"vectorized sweep of {points} points, 2 workers",
        vector_rate,
        "bar-evals/s",
        baseline=event_rate,
        target=">= 10,000,000",
    )
    print(f"identical tables (1 vs 2 workers, event vs vectorized): {same}", flush=True)
    report(
        "sweep",
        {
            "bars": args.n,
            "event_points": event_points,
            "event_1_worker_s": one,
            "event_2_workers_s": two,
            "speedup_1_to_2_workers": speedup,
            "vectorized_points": points,
            "vectorized_2_workers_s": vector,
            "vectorized_bar_evals_per_sec": vector_rate,
            "event_bar_evals_per_sec": event_rate,
            "ratio": vector_rate / event_rate,
            "identical": same,
        },
    )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
