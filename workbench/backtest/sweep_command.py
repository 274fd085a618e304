"""``workbench sweep``: a strategy backtested over a parameter grid, written to a directory.

The data, cost and mode flags are ``workbench backtest``'s; ``--grid NAME=SPEC`` (repeated)
gives each swept parameter its values and ``--param`` fixes the others. The directory holds
``results.csv`` (one row per grid point, in grid order), ``returns.parquet`` (every trial's
per-bar returns, a column per trial number) and ``sweep.json`` (what was run, how many
trials, and the data and cost flags ``workbench validate --sweep`` runs it again with). It is
written whole or not at all, and the same inputs give the same bytes with any number of
workers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.backtest.command import (
    add_run_arguments,
    bars_of,
    fills_of,
    json_number,
    parse_pair,
    staged,
)
from workbench.backtest.grid import parse_grid_arg
from workbench.backtest.sweep import BACKENDS, SweepResult, sweep
from workbench.errors import StrategyError, UsageError

FILES = ("results.csv", "returns.parquet", "sweep.json")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sweep",
        help="backtest a strategy at every point of a parameter grid",
        description="Backtest a strategy at every point of a parameter grid, in parallel, and "
        "write " + ", ".join(FILES) + " into a new directory. Exit codes: 0 done; 1 the "
        "database could not be opened; 2 a usage mistake or a strategy that raised "
        "(nothing written).",
    )
    add_run_arguments(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        required=True,
        metavar="NAME=SPEC",
        help="a swept parameter: START:STOP:STEP (both ends included) or A,B,C",
    )
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a fixed parameter")
    p.add_argument(
        "--n-jobs", type=int, default=-1, help="worker processes (-1: one per core; 1: none)"
    )
    p.add_argument("--backend", choices=BACKENDS, default="loky")
    p.add_argument("--scheduler", help="a Dask scheduler's address (with --backend dask)")
    p.add_argument("--out", type=Path, required=True, help="output directory (must not exist)")


def run(args: argparse.Namespace) -> int:
    grid: dict[str, object] = {}
    for text in args.grid:
        name, spec = parse_grid_arg(text)
        if name in grid:
            raise UsageError(f"--grid {name} is given twice")
        grid[name] = spec
    for text in args.param:
        name, value = parse_pair(text)
        if name in grid:
            raise UsageError(f"{name} is both swept (--grid) and fixed (--param)")
        grid[name] = [value]
    fills = fills_of(args)
    bars, exclude = bars_of(args)
    try:
        result = sweep(
            args.strategy,
            grid,
            bars,
            interval=args.interval,
            fills=fills,
            cash=args.cash,
            mode=args.mode,
            n_jobs=args.n_jobs,
            backend=args.backend,
            scheduler=args.scheduler,
            progress=sys.stderr.isatty(),
            exclude=exclude,
        )
    except StrategyError as exc:
        raise UsageError(str(exc)) from exc
    write(result, args)
    ok = result.table["status"] == "ok"
    best = f"; best sharpe {result.best()['sharpe']:.2f}" if ok.any() else ""
    print(
        f"{result.strategy}: {result.trials} trials, {len(result.table)} points{best} → {args.out}"
    )
    return 0


RUN_ARGUMENTS = (
    "strategy",
    "db",
    "symbol",
    "exchange",
    "interval",
    "fees",
    "maker_fees",
    "slippage",
    "fill_at",
    "cash",
    "start",
    "end",
    "exclude_quality",
    "mode",
)
"""The flags that made a sweep's data and costs: kept in sweep.json so that ``workbench
validate --sweep DIR`` runs its best trial again on the same bars."""


def run_arguments(args: argparse.Namespace) -> dict[str, object]:
    recorded = {name: getattr(args, name) for name in RUN_ARGUMENTS}
    recorded["db"] = str(Path(args.db).resolve())
    return recorded


def write(result: SweepResult, args: argparse.Namespace) -> None:
    with staged(args.out) as staging:
        result.table.to_csv(staging / "results.csv", index=False)
        returns = result.returns.rename(columns=str).reset_index()
        returns.to_parquet(staging / "returns.parquet", index=False)
        summary = {
            "strategy": result.strategy,
            "grid": {name: list(map(str, values)) for name, values in result.grid.items()},
            "symbol": args.symbol,
            "interval": result.interval,
            "mode": result.mode,
            "points": len(result.table),
            "trials": result.trials,
            "best_sharpe": json_number(float(result.table["sharpe"].max())),
            "run": run_arguments(args),
        }
        (staging / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
