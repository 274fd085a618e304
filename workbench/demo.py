"""``workbench demo``: the main job, headless, against the embedded simulator.

Today: simulator (with a few injected faults) → record into DuckDB → clean → resample to
bars → backtest sma_cross on them → a short report; then research on a week of synthetic
history (``workbench synth``): a sweep of sma_cross through the vectorized path, its best
point backtested again on the event engine, and the validation gate's verdict on it. Later
stages (promote, run) extend this script.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from workbench.backtest import backtest, sweep
from workbench.core.fills import BarFills
from workbench.errors import WorkbenchError
from workbench.sim import SimConfig, SimServer
from workbench.sim.synth_command import synthesize
from workbench.validation.command import summary
from workbench.validation.report import validate
from workbench.workbench import Workbench

DEMO_DB = Path("data") / "demo.duckdb"
SYMBOLS = ["BTC-USD", "ETH-USD"]
BAR_INTERVAL = "1s"
BACKTEST = {"fast": 2, "slow": 4}
"""Short windows: a demo recording is only seconds of bars."""
RESEARCH_DAYS = 7
SWEEP_GRID = {"fast": "5:20:5", "slow": "30:90:30"}
COSTS = BarFills(taker_fee_bps=2, slippage_bps=1)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="simulator → record → clean → resample → backtest → report, headless"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="how long to record (default 10)")
    p.add_argument("--db", type=Path, default=DEMO_DB, help=f"fresh database (default {DEMO_DB})")


def run(args: argparse.Namespace) -> int:
    for suffix in ("", ".wal"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    config = SimConfig(
        port=0,
        seed=7,
        symbols=tuple(SYMBOLS),
        rate=200.0,
        drop_every=4.0,
        malformed=0.002,
        gap=0.002,
    )
    with SimServer(config) as sim:
        print(f"simulator on {sim.ws_url} (drops every 4 s, 0.2% malformed, 0.2% gaps)")
        wb = Workbench.open(args.db)
        try:
            feed = wb.start_feed("sim", SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url)
            print(f"recording {args.seconds:g} s into {args.db} ...", flush=True)
            time.sleep(args.seconds)
            feed.stop()
            wb.flush()
            print()
            print(feed.status().summary())
            print()
            print(_report(wb))
            print()
            print("cleaning (raw tables untouched; clean_trades + clean_flags written):")
            print(wb.clean().summary())
            print()
            written = wb.update_bars(BAR_INTERVAL)
            print(f"{BAR_INTERVAL} bars ({written} written to the bars table), last 3 per symbol:")
            print(_bars(wb))
            print()
            print(_backtest(wb))
        finally:
            wb.close()
    print()
    print(_research(args.db.with_name(args.db.stem + "_research.duckdb")))
    return 0


def _research(db: Path) -> str:
    for suffix in ("", ".wal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    made = synthesize(db, ["BTC-USD"], RESEARCH_DAYS, seed=7, trades_per_day=20_000)
    with Workbench.open(db) as wb:
        bars = wb.bars("BTC-USD", "1m")
    swept = sweep(
        "sma_cross", SWEEP_GRID, bars, interval="1m", fills=COSTS, mode="vectorized",
        n_jobs=2, progress=False,
    )  # fmt: skip
    best = swept.best()
    params = {"fast": int(best["fast"]), "slow": int(best["slow"])}
    again = backtest("sma_cross", bars, interval="1m", params=params, fills=COSTS)
    if again.metrics["sharpe"] != best["sharpe"]:
        raise WorkbenchError(
            f"the event engine's sharpe {again.metrics['sharpe']!r} differs from the "
            f"vectorized sweep's {best['sharpe']!r} for {params}"
        )
    return "\n".join(
        [
            made.summary(),
            f"sweep sma_cross over {len(swept.table)} points ({swept.trials} trials, vectorized, "
            f"2 workers) on {len(bars)} 1m bars, 2 bps fee + 1 bp slippage: best {params}, "
            f"sharpe {best['sharpe']:.2f}, return {best['total_return']:.2%}, "
            f"{int(best['trades'])} round trips",
            f"the event engine on the best point: sharpe {again.metrics['sharpe']:.2f}, "
            "identical to the sweep's",
            "validation of the sweep's best (workbench validate):",
            summary(validate(swept)),
        ]
    )


def _report(wb: Workbench) -> str:
    trades = wb.sql(
        """SELECT symbol, count(*) AS trades, round(sum(price * size) / sum(size), 2) AS vwap,
                  arg_max(price, ts) AS last, round(sum(size), 3) AS volume
           FROM trades GROUP BY symbol ORDER BY symbol"""
    )
    # A feed's first snapshot of each book is stored as a resync marked initial; the feed
    # summary counts only the rebuilds, so the table names the two apart to add up with it.
    quality = wb.sql(
        """SELECT CASE WHEN kind = 'resync' AND json_extract_string(detail, '$.initial') = 'true'
                       THEN 'resync (initial)' ELSE kind END AS kind,
                  count(*) AS n
           FROM quality_events GROUP BY ALL ORDER BY kind"""
    )
    book = wb.sql(
        """SELECT symbol, side, level, price, size FROM book_snapshots
           WHERE recv_ts = (SELECT max(recv_ts) FROM book_snapshots) AND level < 3
           ORDER BY symbol, side DESC, level"""
    )
    counts = wb.store.table_counts()
    return "\n\n".join(
        [
            "rows: " + ", ".join(f"{t}={n}" for t, n in counts.items()),
            "trades:\n" + trades.to_string(index=False),
            "data-quality events:\n" + quality.to_string(index=False),
            "final book (top 3):\n" + book.to_string(index=False),
        ]
    )


def _backtest(wb: Workbench) -> str:
    bars = wb.bars(SYMBOLS[0], BAR_INTERVAL)
    result = backtest(
        "sma_cross", bars, interval=BAR_INTERVAL, params=BACKTEST, fills=BarFills(taker_fee_bps=10)
    )
    m = result.metrics
    return (
        f"backtest sma_cross {BACKTEST} on {SYMBOLS[0]} {BAR_INTERVAL} bars, 10 bps taker fee "
        f"(seconds of data: the path, not a result): {len(bars)} bars, {len(result.orders)} "
        f"orders, {int(m['trades'])} round trips, return {m['total_return']:.4%}, fees "
        f"{m['fees_paid']:.2f}"
    )


def _bars(wb: Workbench) -> str:
    frames = [wb.bars(symbol, BAR_INTERVAL).tail(3) for symbol in SYMBOLS]
    columns = ["symbol", "ts", "open", "high", "low", "close", "volume", "vwap", "trades"]
    return "\n".join(
        frame[columns].round({"volume": 3, "vwap": 3}).to_string(index=False) for frame in frames
    )
