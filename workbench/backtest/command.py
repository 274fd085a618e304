"""``workbench backtest``: a strategy over a database's bars, written to an output directory.

Bars come from the ``bars`` table when it holds the series at that interval, else from the
series' trades resampled on the fly. The output directory is written whole or not at all:
the files go to a temporary sibling that is renamed into place only when every one is
written, so a failed run (exit 1, or 2 for a usage mistake or a strategy that raised)
leaves no partial directory.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from workbench.analysis.bars import resample
from workbench.backtest.result import BacktestResult
from workbench.backtest.run import backtest
from workbench.core.clean import quality_windows
from workbench.core.fills import FILL_AT, BarFills
from workbench.core.intervals import parse_interval
from workbench.engine.modes import MODES
from workbench.errors import StrategyError, UsageError
from workbench.replay import TimeLike, micros
from workbench.store import DEFAULT_DB, Store
from workbench.strategy import BUILT_IN

_OHLCV = ["open", "high", "low", "close", "volume"]
FILES = ("orders.csv", "fills.csv", "trades.csv", "equity.csv", "metrics.json", "report.html")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backtest",
        help="backtest a strategy on stored bars and write its results",
        description="Backtest a strategy over a database's bars (or its trades resampled) and "
        "write "
        + ", ".join(FILES)
        + " into a new directory. Exit codes: 0 done; 1 the database could not be opened "
        "(e.g. locked by another process); 2 a usage mistake or a strategy that raised "
        "(nothing written).",
    )
    add_run_arguments(p)
    p.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a strategy parameter"
    )
    p.add_argument("--out", type=Path, required=True, help="output directory (must not exist)")


def add_run_arguments(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The strategy, the data and the costs: what ``backtest``, ``sweep`` and ``validate``
    share (``required=False``: the strategy, symbol and interval may come from elsewhere)."""
    p.add_argument(
        "strategy",
        nargs=None if required else "?",
        help=f"a built-in name ({', '.join(BUILT_IN)}) or path/to/file.py:Class",
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="DuckDB file with bars or trades")
    p.add_argument("--symbol", required=required)
    p.add_argument("--exchange", help="needed when several exchanges have the symbol")
    p.add_argument("--interval", required=required, help="bar length, e.g. 1m, 1h")
    p.add_argument("--fees", type=float, default=0.0, metavar="BPS", help="taker fee")
    p.add_argument("--maker-fees", type=float, default=0.0, metavar="BPS", help="maker fee")
    p.add_argument("--slippage", type=float, default=0.0, metavar="BPS")
    p.add_argument(
        "--fill-at",
        choices=FILL_AT,
        default="next_open",
        help="where market orders fill; close is look-ahead-prone",
    )
    p.add_argument("--cash", type=float, default=10_000.0)
    p.add_argument("--start", help="first bar time (inclusive), e.g. 2026-12-01T00:00")
    p.add_argument("--end", help="bars before this time")
    p.add_argument(
        "--exclude-quality",
        action="store_true",
        help="keep the windows quality_events flag (a gap until its resync, …) out of trading",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="event",
        help="event: the strategy's callbacks; vectorized: its signals(), same results, faster",
    )


def fills_of(args: argparse.Namespace) -> BarFills:
    return BarFills(
        taker_fee_bps=args.fees,
        maker_fee_bps=args.maker_fees,
        slippage_bps=args.slippage,
        fill_at=args.fill_at,
    )


def bars_of(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """:func:`read_bars`, after refusing an existing ``--out``."""
    if args.out.exists():
        raise UsageError(f"{args.out} exists; name a new --out directory (or remove it)")
    return read_bars(args)


def read_bars(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The bars ``--db`` holds for the arguments, and with ``--exclude-quality`` the windows
    to keep out of trading."""
    if not args.db.exists():
        raise UsageError(f"{args.db} does not exist")
    with Store.open(args.db, read_only=True, create=False) as store:
        bars = load_bars(store, args.symbol, args.interval, args.exchange, args.start, args.end)
        if not args.exclude_quality:
            return bars, None
        return bars, quality_windows_of(store, str(bars["exchange"].iloc[0]), args.symbol)


def quality_windows_of(store: Store, exchange: str, symbol: str) -> pd.DataFrame:
    """The windows ``quality_events`` flag for one series (see
    :func:`workbench.core.clean.quality_windows`): ``start``, ``end`` (NaT: still open)."""
    events = store.sql(
        "SELECT exchange, symbol, ts, kind FROM quality_events "
        "WHERE exchange = ? AND (symbol = ? OR symbol IS NULL) ORDER BY ts",
        [exchange, symbol],
    )
    series = pd.DataFrame({"exchange": [exchange], "symbol": [symbol]})
    return quality_windows(events, series)


def run(args: argparse.Namespace) -> int:
    params = dict(parse_pair(text) for text in args.param)
    fills = fills_of(args)
    bars, exclude = bars_of(args)
    try:
        result = backtest(
            args.strategy,
            bars,
            interval=args.interval,
            params=params,
            fills=fills,
            cash=args.cash,
            mode=args.mode,
            exclude=exclude,
        )
    except StrategyError as exc:
        raise UsageError(str(exc)) from exc
    write(result, args.out)
    m = result.metrics
    print(
        f"{result.strategy} on {result.symbol} {result.interval}, {len(bars)} bars: "
        f"return {m['total_return']:.2%}, sharpe {m['sharpe']:.2f}, max drawdown "
        f"{m['max_drawdown']:.2%}, {int(m['trades'])} trades → {args.out}"
    )
    return 0


def load_bars(
    store: Store,
    symbol: str,
    interval: str,
    exchange: str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> pd.DataFrame:
    """One series' bars: stored ones at ``interval``, else its trades resampled."""
    every = parse_interval(interval)
    low, high = micros(start, "start"), micros(end, "end")
    found = store.sql(
        "SELECT DISTINCT exchange FROM trades WHERE symbol = ? UNION "
        "SELECT DISTINCT exchange FROM bars WHERE symbol = ? ORDER BY 1",
        [symbol, symbol],
    )["exchange"].tolist()
    if exchange is None:
        if len(found) > 1:
            raise UsageError(
                f"{symbol} is stored for {', '.join(found)}: choose one with --exchange"
            )
        exchange = found[0] if found else ""
    if exchange not in found:
        raise UsageError(
            f"no bars or trades for {symbol} on {exchange or 'any exchange'} in the database"
        )
    where = "exchange = ? AND symbol = ?"
    params: list[object] = [exchange, symbol]
    if low is not None:
        where += " AND ts >= make_timestamp(?)"
        params.append(low)
    if high is not None:
        where += " AND ts < make_timestamp(?)"
        params.append(high)
    bars = store.sql(
        f"SELECT exchange, symbol, ts, open, high, low, close, volume FROM bars "
        f"WHERE interval = ? AND {where} ORDER BY ts",
        [every.name, *params],
    )
    if bars.empty:
        trades = store.sql(
            "SELECT exchange, symbol, ts, price, size, side FROM trades "
            f"WHERE {where} ORDER BY ts, ingest_seq",
            params,
        )
        if not trades.empty:
            bars = resample(trades, every)[["exchange", "symbol", "ts", *_OHLCV]]
    if bars.empty:
        raise UsageError(f"no {every.name} bars or trades for {exchange} {symbol} in that range")
    return bars


def write(result: BacktestResult, out: Path) -> None:
    """Every output file, into ``out`` as a whole (see the module docstring)."""
    with staged(out) as staging:
        result.orders.to_csv(staging / "orders.csv", index=False)
        result.fills.to_csv(staging / "fills.csv", index=False)
        result.trades.to_csv(staging / "trades.csv", index=False)
        result.equity.to_csv(staging / "equity.csv", index=False)
        summary = {
            "strategy": result.strategy,
            "params": result.params,
            "symbol": result.symbol,
            "interval": result.interval,
            "look_ahead_prone": result.look_ahead_prone,
            "metrics": {k: json_number(v) for k, v in result.metrics.items()},
        }
        (staging / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        (staging / "report.html").write_text(
            "<!doctype html><meta charset='utf-8'><title>backtest</title>"
            + result._repr_html_()
            + "<h4>Round trips</h4>"
            + result.trades.to_html(index=False)
            + "\n"
        )


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write into, renamed to ``out`` when the block
    ends without an error and removed when it does not."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def json_number(value: float) -> float | str | None:
    """JSON has no NaN or infinity: an undefined metric is null, an infinite one a string."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def parse_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--param takes KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()
