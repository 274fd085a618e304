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

A file is imported whole or not at all: the first malformed row stops the import with a
UsageError of the form ``FILE:LINE: what is wrong`` (plus how many other rows are bad), so
the user can open the file at that line. Rows may come in any order; they are stored
ascending. Re-importing replaces the same bars, so overlapping exports can be loaded in turn.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.core.intervals import Interval, parse_interval
from workbench.errors import StoreError, UsageError
from workbench.store import Store

HEADER_SEARCH_LINES = 10
"""How many lines may precede the header (CryptoDataDownload puts a URL first)."""

_TIME_NAMES = ("unix", "timestamp", "time", "datetime", "date")
_TRADES_NAMES = ("tradecount", "trade_count", "trades", "count")
_PRICES = ("open", "high", "low", "close")
_VWAP_TOLERANCE = 0.01
"""Quote/base volume may stray this far (relative) outside [low, high]: exports round both
volumes, which moves the ratio on thin bars; further out, the columns are not what we think."""

# Epoch magnitudes: values below the bound are in that unit (1e11 s is the year 5138).
_EPOCH_UNITS = ((1e11, 1_000_000), (1e14, 1_000), (1e17, 1), (np.inf, 0.001))


@dataclass(frozen=True)
class _Layout:
    """Which CSV column holds what, found from the header line."""

    time: int
    prices: tuple[int, int, int, int]
    volume: int
    quote_volume: int | None
    trades: int | None
    names: tuple[str, ...]


def read_ohlcv_csv(path: str | Path, *, interval: str | Interval | None = None) -> pd.DataFrame:
    """A validated OHLCV file as bars, ascending, in the shape of the ``bars`` table.

    Columns: interval, ts, open, high, low, close, volume, vwap, trades, buy_volume,
    sell_volume (the last two unknown, NaN). ``interval`` defaults to the smallest spacing
    between rows; every timestamp must be on that interval's grid.
    """
    path = Path(path)
    layout, lines, rows = _read_rows(path)
    if not rows:
        raise UsageError(f"{path}: no data rows after the header")
    columns = list(zip(*rows, strict=True))
    line = np.asarray(lines)
    checks = _Checks(path, line)
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
    vwap = np.full(len(rows), np.nan)
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
    trades = np.full(len(rows), np.nan)
    if layout.trades is not None:
        trades = _numbers(columns[layout.trades], layout.names[layout.trades], checks)
        checks.fail(
            ~((trades >= 0) & (trades == np.floor(trades))),
            lambda i: f"trade count {trades[i]:g} is not a whole number >= 0",
        )
    checks.raise_first()
    step = _interval(path, micros, interval)
    order = np.argsort(micros, kind="stable")
    _check_grid(checks, micros, order, step)
    checks.raise_first()
    return pd.DataFrame(
        {
            "interval": step.name,
            "ts": micros[order].astype("datetime64[us]"),
            "open": o[order],
            "high": h[order],
            "low": lo[order],
            "close": c[order],
            "volume": volume[order],
            "vwap": vwap[order],
            "trades": pd.array(trades[order], dtype="Int64"),
            "buy_volume": np.nan,
            "sell_volume": np.nan,
        }
    )


def import_csv(
    store: Store,
    path: str | Path,
    *,
    exchange: str,
    symbol: str,
    interval: str | Interval | None = None,
) -> pd.DataFrame:
    """Validate ``path`` and write its bars into the store under (exchange, symbol).

    Bars already stored at the same (exchange, symbol, interval, ts) are replaced. Returns the
    imported bars (see :func:`read_ohlcv_csv`).
    """
    bars = read_ohlcv_csv(path, interval=interval)
    _write(store, bars, exchange, symbol)
    return bars


def _write(store: Store, bars: pd.DataFrame, exchange: str, symbol: str) -> None:
    if not exchange or not symbol:
        raise UsageError("an import needs both an exchange and a symbol name")
    columns = ", ".join(bars.columns)
    try:
        with store.cursor() as cursor:
            cursor.register("imported_bars", bars)
            cursor.execute(
                f"INSERT OR REPLACE INTO bars (exchange, symbol, {columns}) "
                f"SELECT $exchange, $symbol, {columns} FROM imported_bars",
                {"exchange": exchange, "symbol": symbol},
            )
            cursor.unregister("imported_bars")
    except duckdb.Error as exc:
        raise StoreError(f"writing imported bars into {store.path} failed: {exc}") from exc


# --- reading and checking ----------------------------------------------------------------------


def _read_rows(path: Path) -> tuple[_Layout, list[int], list[list[str]]]:
    """The header's layout, then every non-blank row with its line number; field counts checked."""
    layout: _Layout | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
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
                    raise UsageError(
                        f"{path}:{reader.line_num}: expected {len(layout.names)} fields "
                        f"({','.join(layout.names)}), got {len(row)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
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
    return layout, lines, rows


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
    """Collects failed rows across checks; reports the earliest line and how many rows fail."""

    def __init__(self, path: Path, lines: npt.NDArray[np.int64]) -> None:
        self.path = path
        self.lines = lines
        self.bad = np.zeros(len(lines), dtype=bool)
        self.first: tuple[int, str] | None = None

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
        others = int(self.bad.sum()) - 1
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
    micros = np.zeros(len(values), dtype=np.int64)
    smaller = 0.0
    for bound, factor in _EPOCH_UNITS:
        unit = epoch & (np.abs(numbers) >= smaller) & (np.abs(numbers) < bound)
        micros[unit] = np.round(numbers[unit] * factor).astype(np.int64)
        smaller = bound
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


def _interval(path: Path, micros: npt.NDArray[np.int64], given: str | Interval | None) -> Interval:
    """The given interval, or the smallest spacing between distinct timestamps."""
    if given is not None:
        return parse_interval(given)
    spacing = np.diff(np.unique(micros))
    if len(spacing) == 0:
        raise UsageError(f"{path}: one timestamp cannot show the bar interval; pass --interval")
    smallest = int(spacing.min())
    if smallest % 1_000_000:
        raise UsageError(
            f"{path}: rows are {smallest} µs apart, not whole seconds; pass --interval"
        )
    try:
        return parse_interval(f"{smallest // 1_000_000}s")
    except UsageError as exc:
        raise UsageError(f"{path}: rows {smallest // 1_000_000} s apart: {exc}") from None


def _check_grid(
    checks: _Checks, micros: npt.NDArray[np.int64], order: npt.NDArray[np.intp], step: Interval
) -> None:
    """Every bar starts on the interval's grid, and no start appears twice."""
    checks.fail(
        micros % step.micros != 0,
        lambda i: f"{_iso(micros[i])} is not the start of a {step} bar",
    )
    ordered = micros[order]
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
    p.add_argument("--db", type=Path, required=True, help="DuckDB file (created if missing)")
    p.add_argument("--exchange", required=True, help="exchange name to store the bars under")
    p.add_argument("--symbol", required=True, help="symbol to store the bars under")
    p.add_argument("--interval", help="bar length (default: the smallest spacing between rows)")


def run(args: argparse.Namespace) -> int:
    """Read and validate first, so a bad file never creates or locks the database."""
    bars = read_ohlcv_csv(args.file, interval=args.interval)
    with Store.open(args.db) as store:
        _write(store, bars, args.exchange, args.symbol)
    first, last = bars["ts"].iloc[0], bars["ts"].iloc[-1]
    print(
        f"imported {len(bars)} {bars['interval'][0]} bars of {args.exchange} {args.symbol} "
        f"({first} to {last}) into {args.db}"
    )
    return 0
