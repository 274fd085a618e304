"""``workbench synth``: a seeded synthetic market history written as a recording would be.

The model is :mod:`workbench.sim.synth`; this module only checks the request, writes the
model's arrays into a store and builds the bars. The tables and columns are the recording's
(``trades``, ``book_deltas`` with their ``ingest_seq``, ``instruments``) plus the ``bars`` of
one interval, built by :func:`workbench.analysis.bars.update_bars` from those trades, so
``workbench.replay``, ``workbench backtest`` and a notebook read a synth file like any other.

A new history never mixes with data already in a file: an existing ``--db`` is refused
unless it is a workbench store without any rows. The file is written as ``FILE.synth-partial``
next to it and renamed into place once complete, so a failure or an interrupt leaves no file
behind and the target untouched.

Speed: each chunk of time (a day, for all symbols) is generated with numpy and inserted with
one ``INSERT ... SELECT`` per table from registered Arrow data (numbers zero-copy, text columns
dictionary-encoded), while the next chunk is generated, merged and converted on a helper
thread; DuckDB and numpy both release the GIL, so the two overlap. DuckDB maintaining the
trades' UNIQUE index is the largest cost (see ``benchmarks/bench_synth.py``).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from workbench.analysis.bars import update_bars
from workbench.core.intervals import parse_interval
from workbench.errors import UsageError
from workbench.replay import micros
from workbench.sim.market import PRICE_DECIMALS, SIZE_DECIMALS
from workbench.sim.synth import (
    BOOK_DEPTH,
    BOOK_KINDS,
    BOOK_SIDES,
    DAY_SECONDS,
    DEFAULT_TRADES_PER_DAY,
    TRADE_SIDES,
    TRADES_PER_BOOK_UPDATE,
    BookRows,
    SymbolModel,
    TradeRows,
    merge,
)
from workbench.store import DEFAULT_DB, TABLES, Store, Table

DEFAULT_EXCHANGE = "synth"
"""Not ``sim``: the rows are not the simulator's order flow, and the name says so in every
query and join."""
DEFAULT_START = "2024-01-01"
DEFAULT_INTERVAL = "1m"
TRANSACTION_TRADES = 2_000_000
"""Trades inserted per transaction. The trades' UNIQUE (exchange, symbol, trade_id) index
dominates the cost, and each commit merges the transaction's index into the file's: 2 M
trades took 4.2 s in one transaction, 5.9 s with a commit per 200k-trade chunk. The bound
keeps a transaction's own index within MEMORY_LIMIT (the file's index stays in memory as it
grows, as in any recording: ~100 bytes a trade)."""
MEMORY_LIMIT = "512MB"
"""DuckDB's buffer pool while writing (the store's default 64 MB cannot hold a transaction's
index, see TRANSACTION_TRADES)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_PAIR = re.compile(r"([A-Za-z0-9]{1,15})-([A-Za-z0-9]{1,15})")
_Columns = dict[str, pa.Array]
"""One table's rows as Arrow arrays by column name."""


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote."""

    path: Path
    rows: dict[str, int]
    """Rows per table of the finished file."""
    start_us: int
    end_us: int
    interval: str
    elapsed: float
    """Seconds from the first chunk generated to the file renamed into place."""

    def summary(self) -> str:
        trades = self.rows["trades"]
        span = " → ".join(
            f"{np.datetime64(t, 'us').astype('datetime64[s]')}".replace("T", " ")
            for t in (self.start_us, self.end_us)
        )
        rows = ", ".join(f"{t}={n:,}" for t, n in self.rows.items() if n)
        return (
            f"synth: wrote {self.path}: {rows} ({self.interval} bars); {span} UTC; "
            f"{self.elapsed:.1f}s, {trades / self.elapsed:,.0f} trades/s"
        )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``synth`` on the CLI's sub-command parsers."""
    p = sub.add_parser(
        "synth",
        help="write a seeded synthetic market history (trades, book, bars) into a new store",
        description="Generate --days of trades and a top-"
        f"{BOOK_DEPTH} book (updated before every {TRADES_PER_BOOK_UPDATE}th trade) per "
        "symbol on the simulator's price grid — trending and ranging regimes, volatility "
        "clusters, jumps, more trades around midnight UTC than at noon — and write them as a "
        "recording (trades, book_deltas with ingest_seq, instruments) plus the bars of "
        "--interval. The same arguments give the same tables, and a symbol's history does not "
        "depend on the others listed. --db must not exist or be a workbench store without "
        "rows (anything else is refused untouched); a failed run leaves no file.",
        epilog="exit codes: 0 written; 1 runtime failure (database; the reason on stderr); "
        "2 usage mistake, or a --db that exists and is not an empty workbench store",
    )
    p.add_argument(
        "--days", type=float, required=True, metavar="N", help="length of the history (0.5 = 12 h)"
    )
    p.add_argument(
        "--symbols", nargs="+", required=True, metavar="SYM", help="BASE-QUOTE pairs, e.g. BTC-USD"
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="DuckDB file to create")
    p.add_argument("--seed", type=int, default=0, help="seed of every symbol's history")
    p.add_argument("--exchange", default=DEFAULT_EXCHANGE, help="exchange name of the rows")
    p.add_argument("--interval", default=DEFAULT_INTERVAL, help="bars to build, 1s to 1d")
    p.add_argument("--start", default=DEFAULT_START, metavar="TIME", help="first instant, ISO, UTC")
    p.add_argument(
        "--trades-per-day",
        type=float,
        default=DEFAULT_TRADES_PER_DAY,
        metavar="N",
        help="average trades per symbol per day",
    )


def run(args: argparse.Namespace) -> int:
    result = synthesize(
        args.db,
        args.symbols,
        args.days,
        seed=args.seed,
        exchange=args.exchange,
        interval=args.interval,
        start=args.start,
        trades_per_day=args.trades_per_day,
    )
    print(result.summary())
    return 0


def synthesize(
    db: str | Path,
    symbols: Sequence[str],
    days: float,
    *,
    seed: int = 0,
    exchange: str = DEFAULT_EXCHANGE,
    interval: str = DEFAULT_INTERVAL,
    start: str = DEFAULT_START,
    trades_per_day: float = DEFAULT_TRADES_PER_DAY,
) -> SynthResult:
    """Write ``days`` of synthetic history of ``symbols`` into the new store ``db``.

    Every argument is checked before any file is touched (UsageError naming the problem);
    ``db`` must not exist or be a workbench store without rows.
    """
    path = Path(db)
    names = _symbols(symbols)
    if not (math.isfinite(days) and days > 0):
        raise UsageError(f"--days must be a number above 0, got {days:g}")
    seconds = round(days * DAY_SECONDS)
    if seconds < 1:
        raise UsageError(f"--days {days:g} is less than a second")
    if not (math.isfinite(trades_per_day) and trades_per_day > 0):
        raise UsageError(f"--trades-per-day must be a number above 0, got {trades_per_day:g}")
    if not _NAME.fullmatch(exchange):
        raise UsageError(f"bad exchange {exchange!r}: use 1-32 letters, digits, '.', '_' or '-'")
    bars = parse_interval(interval)
    start_us = micros(start, "--start")
    assert start_us is not None
    _check_target(path)

    started = time.perf_counter()
    models = [SymbolModel(seed, s, start_us, seconds, trades_per_day) for s in names]
    partial = path.with_name(path.name + ".synth-partial")
    _remove(partial)  # left by a run that was killed
    try:
        with Store.open(partial) as store:
            store.sql(f"SET memory_limit = '{MEMORY_LIMIT}'")
            _write(store, exchange, names, models)
            update_bars(store, bars, full=True)
            rows = store.table_counts()
        os.replace(partial, path)
    except BaseException:
        _remove(partial)
        raise
    end_us = start_us + seconds * 1_000_000
    return SynthResult(path, rows, start_us, end_us, bars.name, time.perf_counter() - started)


def _symbols(symbols: Sequence[str]) -> list[str]:
    if not symbols or isinstance(symbols, str):
        raise UsageError("--symbols needs at least one BASE-QUOTE pair, e.g. BTC-USD")
    bad = [s for s in symbols if not _PAIR.fullmatch(s)]
    if bad:
        raise UsageError(
            f"bad symbol {bad[0]!r}: write BASE-QUOTE with letters and digits, e.g. BTC-USD"
        )
    twice = sorted({s for s in symbols if list(symbols).count(s) > 1})
    if twice:
        raise UsageError(f"symbols listed twice: {', '.join(twice)}")
    return list(symbols)


def _check_target(path: Path) -> None:
    """Refuse a ``--db`` holding anything: the new history must not mix with other data."""
    if Store.opened(path) is not None:
        raise UsageError(f"{path} is open in this process; close it first")
    if not path.exists():
        return
    with Store.open(path, read_only=True, create=False) as store:
        counts = store.table_counts()
    held = ", ".join(f"{t}={n:,}" for t, n in counts.items() if n)
    if held:
        raise UsageError(
            f"{path} already holds rows ({held}); synth writes a new file (or an empty "
            "store): choose another --db"
        )
    if Path(f"{path}.wal").exists():
        raise UsageError(f"{path} has a write-ahead log; open it once with workbench first")


def _remove(path: Path) -> None:
    for leftover in (path, Path(f"{path}.wal")):
        leftover.unlink(missing_ok=True)


def _write(store: Store, exchange: str, symbols: list[str], models: list[SymbolModel]) -> None:
    """Every chunk of time, prepared one chunk ahead of the inserts; a transaction per
    TRANSACTION_TRADES trades or so (see there)."""
    with store.cursor() as cursor:
        _insert(cursor, TABLES["instruments"], _instruments(exchange, symbols))
        open_trades = 0
        cursor.begin()
        try:
            for trades, book in _prefetched(_batches(exchange, symbols, models)):
                _insert(cursor, TABLES["trades"], trades)
                _insert(cursor, TABLES["book_deltas"], book)
                open_trades += len(trades["ts"])
                if open_trades >= TRANSACTION_TRADES:
                    cursor.commit()
                    cursor.begin()
                    open_trades = 0
            cursor.commit()
        except BaseException:
            cursor.rollback()
            raise


def _batches(
    exchange: str, symbols: list[str], models: list[SymbolModel]
) -> Iterator[tuple[_Columns, _Columns]]:
    """The trades and book_deltas columns of each chunk of time, every symbol merged."""
    first = 1
    for chunks in zip(*(m.chunks() for m in models), strict=True):
        trades, book = merge(chunks, first)
        first += sum(len(c.event_recv) for c in chunks)
        yield _trades(trades, exchange, symbols), _book(book, exchange, symbols)


def _prefetched(
    batches: Iterator[tuple[_Columns, _Columns]],
) -> Iterator[tuple[_Columns, _Columns]]:
    """``batches``, each made on a helper thread while the caller inserts the one before."""
    with ThreadPoolExecutor(1, thread_name_prefix="wb-synth") as pool:
        pending: Future[tuple[_Columns, _Columns] | None] = pool.submit(next, batches, None)
        while (ready := pending.result()) is not None:
            pending = pool.submit(next, batches, None)
            yield ready


def _insert(cursor: duckdb.DuckDBPyConnection, table: Table, columns: _Columns) -> None:
    """One INSERT of Arrow ``columns``, which must be the table's, by name. Plain INSERT, no
    ON CONFLICT: the file is new, so nothing can conflict, and the check costs ~20 %."""
    if columns.keys() != set(table.column_names):
        raise AssertionError(f"synth columns differ from the {table.name} schema")
    names = ", ".join(table.column_names)
    cursor.register(table.staging_name, pa.table(columns))
    try:
        cursor.execute(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {table.staging_name}"
        )
    finally:
        cursor.unregister(table.staging_name)


def _instruments(exchange: str, symbols: list[str]) -> _Columns:
    pairs = [_PAIR.fullmatch(s) for s in symbols]
    return {
        "exchange": pa.array([exchange] * len(symbols)),
        "symbol": pa.array(symbols),
        "pair": pa.array([s.upper() for s in symbols]),
        "base": pa.array([m[1].upper() for m in pairs if m]),
        "quote": pa.array([m[2].upper() for m in pairs if m]),
    }


def _trades(rows: TradeRows, exchange: str, symbols: list[str]) -> _Columns:
    return {
        "exchange": _coded(np.zeros(len(rows.ts), dtype=np.int8), [exchange]),
        "symbol": _coded(rows.symbol, symbols),
        "ts": _time(rows.ts),
        "recv_ts": _time(rows.recv_ts),
        "price": pa.array(rows.price / 10**PRICE_DECIMALS),
        "size": pa.array(rows.lots / 10**SIZE_DECIMALS),
        "side": _coded(rows.buy.view(np.int8), TRADE_SIDES),
        "trade_id": pc.cast(pa.array(rows.trade_id), pa.string()),
        "seq": pa.array(rows.seq),
        "ingest_seq": pa.array(rows.ingest_seq),
    }


def _book(rows: BookRows, exchange: str, symbols: list[str]) -> _Columns:
    reset = rows.side < 0  # a reset row has no level: side, price and size are NULL
    return {
        "exchange": _coded(np.zeros(len(rows.ts), dtype=np.int8), [exchange]),
        "symbol": _coded(rows.symbol, symbols),
        "ts": _time(rows.ts),
        "recv_ts": _time(rows.recv_ts),
        "seq": pa.array(rows.seq),
        "kind": _coded(rows.kind, BOOK_KINDS),
        "side": _coded(rows.side, BOOK_SIDES, mask=reset),
        "price": pa.array(rows.price / 10**PRICE_DECIMALS, mask=reset),
        "size": pa.array(rows.lots / 10**SIZE_DECIMALS, mask=reset),
        "ingest_seq": pa.array(rows.ingest_seq),
    }


def _coded(
    codes: npt.NDArray[np.integer],
    values: Sequence[str],
    *,
    mask: npt.NDArray[np.bool_] | None = None,
) -> pa.DictionaryArray:
    """Text from codes without a Python string per row; DuckDB reads it as VARCHAR."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), pa.array(list(values)))


def _time(us: npt.NDArray[np.int64]) -> pa.Array:
    return pa.array(us.view("datetime64[us]"))
