"""OHLCV CSV files (exchange exports, CryptoDataDownload) into the ``bars`` table, validated.

Two layouts are recognised by their header line, in any column order and letter case:

- CryptoDataDownload: a URL line first, then
  ``unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount``, newest row first.
  ``unix`` wins over ``date``; the first ``Volume …`` column is the base-asset volume and the
  second, the quote-asset volume, gives the VWAP (quote / base).
- Plain: ``timestamp,open,high,low,close,volume``.

Times are Unix epoch numbers (seconds, milliseconds, microseconds or nanoseconds, told apart
by magnitude row by row, so a file that switches units midway still reads) or ISO 8601 text
(naive means UTC). Lines before the header (banners, URLs) are skipped, and so are blank lines.

A malformed file writes nothing: the earliest malformed row stops the import with a
UsageError of the form ``FILE:LINE: what is wrong`` (plus how many other rows are bad), so
the user can open the file at that line. Rows may come in any order (:func:`read_ohlcv_csv`
returns them ascending). Re-importing replaces the same bars, so overlapping exports can be
loaded in turn.

Memory stays bounded whatever the file's size: the file is read :data:`CHUNK_ROWS` rows at a
time, twice. The first pass checks every row and keeps only each row's time and line number
(16 bytes), for the checks that span the file (interval, grid, duplicates); the second writes
the bars, one transaction per chunk, because DuckDB holds a transaction's inserted rows and
index keys in memory until it commits (~300 bytes a bar, beyond its memory limit). So a
database failure midway leaves the chunks before it stored; the error says so, and importing
the file again completes it.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.core.intervals import Interval, parse_interval
from workbench.errors import StoreError, UsageError
from workbench.store import DEFAULT_DB, Store

HEADER_SEARCH_LINES = 10
"""How many lines may precede the header (CryptoDataDownload puts a URL first)."""

CHUNK_ROWS = 20_000
"""Rows read, checked and written at a time. The csv module holds a row as a list of str
(~0.6 KB for six fields), so a chunk costs ~12 MB, while DuckDB's per-statement overhead stays
negligible."""

_TIME_NAMES = ("unix", "timestamp", "time", "datetime", "date")
_TRADES_NAMES = ("tradecount", "trade_count", "trades", "count")
_PRICES = ("open", "high", "low", "close")
_VWAP_TOLERANCE = 0.01
"""Quote/base volume may stray this far (relative) outside [low, high]: exports round both
volumes, which moves the ratio on thin bars; further out, the columns are not what we think."""

# Epoch magnitudes: values below the bound are in that unit (1e11 s is the year 5138).
_EPOCH_UNITS = ((1e11, 1_000_000), (1e14, 1_000), (1e17, 1), (np.inf, 0.001))
# Times from 0001-01-01 up to 10000-01-01 (µs since the epoch), the years ISO 8601 text can
# write; beyond them a number is not a time (1e300 would not even fit the int64 of a µs time).
_TIME_RANGE = (-62_135_596_800_000_000, 253_402_300_800_000_000)


@dataclass(frozen=True)
class _Layout:
    """Which CSV column holds what, found from the header line."""

    time: int
    prices: tuple[int, int, int, int]
    volume: int
    quote_volume: int | None
    trades: int | None
    names: tuple[str, ...]


@dataclass(frozen=True)
class _Chunk:
    """Consecutive data rows of the file, by column, with each row's line number."""

    layout: _Layout
    lines: npt.NDArray[np.int64]
    columns: list[tuple[str, ...]]
    misfits: dict[int, int]
    """Rows (index in the chunk) with the wrong number of fields → how many they had; their
    fields are blanks here, so they convert without shifting their neighbours."""


@dataclass(frozen=True)
class _Bars:
    """One chunk's rows as numbers."""

    micros: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    vwap: npt.NDArray[np.float64]
    trades: npt.NDArray[np.float64]


@dataclass(frozen=True)
class ImportedBars:
    """What an import stored: how many bars, their interval and their time span."""

    rows: int
    interval: str
    first: pd.Timestamp
    last: pd.Timestamp


@dataclass(frozen=True)
class _Plan:
    """A file that passed every check, and what importing it stores."""

    path: Path
    step: Interval
    chunk_rows: int
    imported: ImportedBars


def read_ohlcv_csv(
    path: str | Path, *, interval: str | Interval | None = None, chunk_rows: int = CHUNK_ROWS
) -> pd.DataFrame:
    """A validated OHLCV file as bars, ascending, in the shape of the ``bars`` table.

    Columns: interval, ts, open, high, low, close, volume, vwap, trades, buy_volume,
    sell_volume (the last two unknown, NaN). ``interval`` defaults to the smallest spacing
    between rows; every timestamp must be on that interval's grid. The frame holds the whole
    file; :func:`import_csv` stores a file of any size in bounded memory.
    """
    plan = _validate(Path(path), interval, chunk_rows)
    bars = pd.concat(list(_frames(plan)), ignore_index=True)
    return bars.sort_values("ts", kind="stable", ignore_index=True)


def import_csv(
    store: Store,
    path: str | Path,
    *,
    exchange: str,
    symbol: str,
    interval: str | Interval | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportedBars:
    """Validate ``path`` and write its bars into the store under (exchange, symbol).

    Bars already stored at the same (exchange, symbol, interval, ts) are replaced.
    """
    _check_names(exchange, symbol)
    plan = _validate(Path(path), interval, chunk_rows)
    _write(store, plan, exchange, symbol)
    return plan.imported


def _check_names(exchange: str, symbol: str) -> None:
    if not exchange or not symbol:
        raise UsageError("an import needs both an exchange and a symbol name")


def _write(store: Store, plan: _Plan, exchange: str, symbol: str) -> None:
    written = 0
    try:
        with store.cursor() as cursor:
            for bars in _frames(plan):
                columns = ", ".join(bars.columns)
                cursor.register("imported_bars", bars)
                cursor.execute(
                    f"INSERT OR REPLACE INTO bars (exchange, symbol, {columns}) "
                    f"SELECT $exchange, $symbol, {columns} FROM imported_bars",
                    {"exchange": exchange, "symbol": symbol},
                )
                cursor.unregister("imported_bars")
                written += len(bars)
    except (duckdb.Error, UsageError) as exc:
        # UsageError here means the file changed after it was checked.
        stored = f"{written} of {plan.imported.rows} bars are stored; import the file again"
        if isinstance(exc, UsageError):
            raise UsageError(f"{exc} (the file changed during the import; {stored})") from exc
        raise StoreError(
            f"writing imported bars into {store.path} failed ({stored}): {exc}"
        ) from exc


# --- reading and checking ----------------------------------------------------------------------


def _validate(path: Path, interval: str | Interval | None, chunk_rows: int) -> _Plan:
    """Every check over the whole file, one chunk in memory at a time; raises the first failure."""
    checks = _Checks(path)
    times: list[npt.NDArray[np.int64]] = []
    lines: list[npt.NDArray[np.int64]] = []
    for chunk in _chunks(path, chunk_rows):
        checks.chunk(chunk.lines)
        times.append(_convert(chunk, checks).micros)
        lines.append(chunk.lines)
    if not times:
        raise UsageError(f"{path}: no data rows after the header")
    checks.raise_first()
    micros = np.concatenate(times)
    del times
    checks.chunk(np.concatenate(lines))
    del lines
    order = np.argsort(micros, kind="stable")
    ordered = micros[order]
    step = _interval(path, ordered, interval)
    _check_grid(checks, micros, order, ordered, step)
    checks.raise_first()
    first, last = (pd.Timestamp(int(ordered[i]), unit="us") for i in (0, -1))
    return _Plan(path, step, chunk_rows, ImportedBars(len(micros), step.name, first, last))


def _frames(plan: _Plan) -> Iterator[pd.DataFrame]:
    """The checked file's bars, a chunk at a time, in file order."""
    for chunk in _chunks(plan.path, plan.chunk_rows):
        checks = _Checks(plan.path)
        checks.chunk(chunk.lines)
        bars = _convert(chunk, checks)
        checks.raise_first()
        yield pd.DataFrame(
            {
                "interval": plan.step.name,
                "ts": bars.micros.astype("datetime64[us]"),
                "open": bars.open,
                "high": bars.high,
                "low": bars.low,
                "close": bars.close,
                "volume": bars.volume,
                "vwap": bars.vwap,
                "trades": pd.array(bars.trades, dtype="Int64"),
                "buy_volume": np.nan,
                "sell_volume": np.nan,
            }
        )


def _chunks(path: Path, chunk_rows: int) -> Iterator[_Chunk]:
    """The header's layout, then the non-blank rows, ``chunk_rows`` at a time."""
    layout: _Layout | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    misfits: dict[int, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            for row in reader:
                if layout is None:
                    layout = _layout(path, row)
                    if layout is None and reader.line_num >= HEADER_SEARCH_LINES:
                        raise UsageError(
                            f"{path}: no header with open, high, low, close, volume and a time "
                            f"column in the first {HEADER_SEARCH_LINES} lines"
                        )
                    continue
                if len(row) <= 1 and not "".join(row).strip():
                    continue  # a blank line
                if len(row) != len(layout.names):
                    misfits[len(rows)] = len(row)
                    row = [""] * len(layout.names)
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == chunk_rows:
                    yield _Chunk(layout, np.array(lines), list(zip(*rows, strict=True)), misfits)
                    rows, lines, misfits = [], [], {}
            if layout is not None and rows:
                yield _Chunk(layout, np.array(lines), list(zip(*rows, strict=True)), misfits)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UsageError(f"{path}: unreadable CSV ({exc})") from None
    if layout is None:
        raise UsageError(f"{path}: no header line (it needs open, high, low, close, volume)")


def _convert(chunk: _Chunk, checks: _Checks) -> _Bars:
    """A chunk's rows as numbers, every check that needs only the row itself applied."""
    layout, columns = chunk.layout, chunk.columns
    if chunk.misfits:
        misfit = np.zeros(len(chunk.lines), dtype=bool)
        misfit[list(chunk.misfits)] = True
        checks.fail(
            misfit,
            lambda i: (
                f"expected {len(layout.names)} fields ({','.join(layout.names)}), "
                f"got {chunk.misfits[i]}"
            ),
        )
    micros = _times(columns[layout.time], layout.names[layout.time], checks)
    o, h, lo, c = (
        _numbers(columns[i], name, checks) for i, name in zip(layout.prices, _PRICES, strict=True)
    )
    volume = _numbers(columns[layout.volume], "volume", checks)
    checks.fail(~(o > 0) | ~(h > 0) | ~(lo > 0) | ~(c > 0), lambda i: "prices must be > 0")
    checks.fail(
        h < np.maximum(o, c),
        lambda i: f"high {h[i]:g} is below max(open, close) {max(o[i], c[i]):g}",
    )
    checks.fail(
        lo > np.minimum(o, c),
        lambda i: f"low {lo[i]:g} is above min(open, close) {min(o[i], c[i]):g}",
    )
    checks.fail(~(volume >= 0), lambda i: f"volume {volume[i]:g} is negative")
    vwap = np.full(len(micros), np.nan)
    if layout.quote_volume is not None:
        quote = _numbers(columns[layout.quote_volume], layout.names[layout.quote_volume], checks)
        traded = volume > 0
        vwap[traded] = quote[traded] / volume[traded]
        outside = (vwap < lo * (1 - _VWAP_TOLERANCE)) | (vwap > h * (1 + _VWAP_TOLERANCE))
        checks.fail(
            outside,
            lambda i: (
                f"quote/base volume gives a VWAP of {vwap[i]:g}, outside low..high "
                f"{lo[i]:g}..{h[i]:g}: the first volume column must be the base asset's"
            ),
        )
    trades = np.full(len(micros), np.nan)
    if layout.trades is not None:
        trades = _numbers(columns[layout.trades], layout.names[layout.trades], checks)
        checks.fail(
            ~((trades >= 0) & (trades == np.floor(trades))),
            lambda i: f"trade count {trades[i]:g} is not a whole number >= 0",
        )
    return _Bars(micros, o, h, lo, c, volume, vwap, trades)


def _layout(path: Path, row: Sequence[str]) -> _Layout | None:
    """The columns of a header line; None if ``row`` is not one (a banner line)."""
    names = tuple(field.strip().lower() for field in row)
    if not set(_PRICES).issubset(names):
        return None

    def first(candidates: Sequence[str]) -> int | None:
        return next((names.index(n) for n in candidates if n in names), None)

    time = first(_TIME_NAMES)
    volumes = [i for i, n in enumerate(names) if n == "volume" or n.startswith("volume ")]
    if time is None or not volumes:
        missing = "a time column (" + "/".join(_TIME_NAMES) + ")" if time is None else "volume"
        raise UsageError(f"{path}: the header has no {missing}: {','.join(row)}")
    prices = tuple(names.index(p) for p in _PRICES)
    return _Layout(
        time=time,
        prices=(prices[0], prices[1], prices[2], prices[3]),
        volume=volumes[0],
        quote_volume=volumes[1] if len(volumes) > 1 else None,
        trades=first(_TRADES_NAMES),
        names=names,
    )


class _Checks:
    """Collects failed rows across checks and chunks; reports the earliest line and how many
    rows fail."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.bad = np.zeros(0, dtype=bool)
        self.earlier_bad = 0
        self.first: tuple[int, str] | None = None

    def chunk(self, lines: npt.NDArray[np.int64]) -> None:
        """The rows on ``lines`` are checked next (the failures so far stay counted)."""
        self.earlier_bad += int(self.bad.sum())
        self.lines = lines
        self.bad = np.zeros(len(lines), dtype=bool)

    def fail(self, mask: npt.NDArray[np.bool_], message: Callable[[int], str]) -> None:
        """Rows where ``mask`` holds are malformed; ``message(i)`` says why for row ``i``."""
        hits = np.flatnonzero(mask & ~self.bad)
        if len(hits) == 0:
            return
        self.bad |= mask
        i = int(hits[0])
        if self.first is None or self.lines[i] < self.first[0]:
            self.first = (int(self.lines[i]), message(i))

    def raise_first(self) -> None:
        if self.first is None:
            return
        line, message = self.first
        others = self.earlier_bad + int(self.bad.sum()) - 1
        more = f" ({others} more malformed row{'s' if others != 1 else ''})" if others else ""
        raise UsageError(f"{self.path}:{line}: {message}{more}")


def _numbers(values: Sequence[str], name: str, checks: _Checks) -> npt.NDArray[np.float64]:
    numbers = np.asarray(
        pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), dtype=np.float64
    )

    def message(i: int) -> str:
        text = values[i].strip()
        return f"{name} {text!r} is not a finite number" if text else f"{name} is missing"

    checks.fail(~np.isfinite(numbers), message)
    return numbers


def _times(values: Sequence[str], name: str, checks: _Checks) -> npt.NDArray[np.int64]:
    """Epoch numbers or ISO 8601 text → microseconds since the epoch (UTC)."""
    text = pd.Series(values, dtype=object)
    numbers = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
    epoch = np.isfinite(numbers)
    scaled = np.zeros(len(values))
    smaller = 0.0
    for bound, factor in _EPOCH_UNITS:
        unit = epoch & (np.abs(numbers) >= smaller) & (np.abs(numbers) < bound)
        scaled[unit] = np.round(numbers[unit] * factor)
        smaller = bound
    outside = epoch & ~((scaled >= _TIME_RANGE[0]) & (scaled < _TIME_RANGE[1]))
    checks.fail(
        outside,
        lambda i: (
            f"{name} {values[i].strip()!r} is out of range: as a Unix time it is not within "
            f"the years 1 to 9999"
        ),
    )
    scaled[outside] = 0
    micros = scaled.astype(np.int64)
    other = np.flatnonzero(~epoch)
    dated = pd.to_datetime(
        text.iloc[other].str.strip(), format="ISO8601", utc=True, errors="coerce"
    )
    parsed = dated.notna().to_numpy()
    micros[other[parsed]] = (
        dated[parsed].dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(np.int64)
    )
    unparsed = np.zeros(len(values), dtype=bool)
    unparsed[other[~parsed]] = True
    checks.fail(
        unparsed,
        lambda i: f"{name} {values[i].strip()!r} is neither a Unix time nor an ISO 8601 date",
    )
    return micros


def _interval(path: Path, ordered: npt.NDArray[np.int64], given: str | Interval | None) -> Interval:
    """The given interval, or the smallest spacing between distinct (sorted) timestamps."""
    if given is not None:
        return parse_interval(given)
    spacing = np.diff(ordered)
    if not spacing.any():
        raise UsageError(f"{path}: one timestamp cannot show the bar interval; pass --interval")
    smallest = int(spacing.min(where=spacing > 0, initial=np.iinfo(np.int64).max))
    if smallest % 1_000_000:
        raise UsageError(
            f"{path}: rows are {smallest} µs apart, not whole seconds; pass --interval"
        )
    try:
        return parse_interval(f"{smallest // 1_000_000}s")
    except UsageError as exc:
        raise UsageError(f"{path}: rows {smallest // 1_000_000} s apart: {exc}") from None


def _check_grid(
    checks: _Checks,
    micros: npt.NDArray[np.int64],
    order: npt.NDArray[np.intp],
    ordered: npt.NDArray[np.int64],
    step: Interval,
) -> None:
    """Every bar starts on the interval's grid, and no start appears twice."""
    checks.fail(
        micros % step.micros != 0,
        lambda i: f"{_iso(micros[i])} is not the start of a {step} bar",
    )
    repeated = np.zeros(len(micros), dtype=bool)
    repeated[order[1:][ordered[1:] == ordered[:-1]]] = True

    def message(i: int) -> str:
        # The sort is stable, so the first of equal timestamps is the earliest line.
        first = order[np.searchsorted(ordered, micros[i])]
        return f"duplicate bar {_iso(micros[i])} (also on line {checks.lines[first]})"

    checks.fail(repeated, message)


def _iso(micros: np.int64) -> str:
    return str(pd.Timestamp(int(micros), unit="us"))


# --- command line ------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import-csv`` on the CLI's sub-command parsers."""
    p = sub.add_parser(
        "import-csv",
        help="import an OHLCV CSV file (exchange export, CryptoDataDownload) into bars",
        description="Validate an OHLCV CSV file and store its bars. A malformed row stops "
        "the import with FILE:LINE and what is wrong; nothing is written then.",
    )
    p.add_argument("file", type=Path, help="CSV file")
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="DuckDB file (created if missing)")
    p.add_argument("--exchange", required=True, help="exchange name to store the bars under")
    p.add_argument("--symbol", required=True, help="symbol to store the bars under")
    p.add_argument("--interval", help="bar length (default: the smallest spacing between rows)")


def run(args: argparse.Namespace) -> int:
    """Read and validate first, so a bad file never creates or locks the database."""
    _check_names(args.exchange, args.symbol)
    plan = _validate(args.file, args.interval, CHUNK_ROWS)
    with Store.open(args.db) as store:
        _write(store, plan, args.exchange, args.symbol)
    bars = plan.imported
    print(
        f"imported {bars.rows} {bars.interval} bars of {args.exchange} {args.symbol} "
        f"({bars.first} to {bars.last}) into {args.db}"
    )
    return 0
