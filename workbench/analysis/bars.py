"""OHLCV bars from trades (or from finer bars) in DuckDB: one SQL implementation, two doors.

A notebook calls :func:`resample` on a DataFrame; the CLI and live updates call
:func:`update_bars` on a store, which writes the ``bars`` table. Both run the same query
(:func:`_bars_sql`) — the DataFrame through an in-memory DuckDB — so a bar computed
in a notebook is the bar the runner stores.

Definitions:

- A bar covers ``[ts, ts + interval)``; ``ts`` is the bucket start, naive UTC, aligned to the
  Unix epoch (so hourly bars start at :00; see :mod:`workbench.core.intervals`).
- ``open``/``close`` are the first/last trade by ``ts``; trades sharing a timestamp keep their
  arrival order (insertion order in the table, row order in a DataFrame). Buckets are
  computed on integer epoch microseconds, which is faster than ``time_bucket`` and exact.
- ``vwap`` is ``sum(price * size) / sum(size)``; NULL without volume, or when built from bars
  of which one has no vwap. ``buy_volume``/``sell_volume`` split volume by the taker side.
- Empty buckets: ``"omit"`` leaves them out; ``"carry"`` fills every bucket between a
  series' first and last bar with ``open = high = low = close =`` the previous close,
  ``volume = trades = 0`` and ``vwap`` NULL.
- Bars → coarser bars aggregate only non-empty bars (volume or trades > 0), so ticks → 1m →
  5m equals ticks → 5m under either policy (up to float rounding in volume and vwap).
"""

from __future__ import annotations

import argparse
import functools
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from workbench.core.intervals import Interval, check_coarser, parse_interval
from workbench.errors import StoreError, UsageError
from workbench.store import DEFAULT_DB, Store

EMPTY_POLICIES = ("omit", "carry")
"""What happens to a bucket without trades: left out, or filled with the previous close."""

BAR_COLUMNS = (
    "exchange",
    "symbol",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
    "buy_volume",
    "sell_volume",
)
"""Columns of a bars DataFrame, in order (the ``bars`` table adds ``interval``)."""

_TRADE_OPTIONAL = {"exchange": "''", "symbol": "''", "side": "NULL::VARCHAR"}
_BAR_OPTIONAL = {
    "exchange": "''",
    "symbol": "''",
    "vwap": "NULL::DOUBLE",
    "trades": "NULL::BIGINT",
    "buy_volume": "NULL::DOUBLE",
    "sell_volume": "NULL::DOUBLE",
}
_TRADE_REQUIRED: tuple[str, ...] = ("ts", "price", "size")
_BAR_REQUIRED: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")

_ORDER_SCALE = 2**64
"""Packs (epoch µs, arrival order) into one HUGEINT key: arg_min over it is 2-3x faster than
over a (ts, order) struct and breaks timestamp ties deterministically."""


def resample(data: pd.DataFrame, interval: str | Interval, *, empty: str = "omit") -> pd.DataFrame:
    """Bars at ``interval`` from a DataFrame of trades or of finer bars.

    Trades need ``ts``, ``price`` and ``size`` (``side``, ``exchange`` and ``symbol`` are
    used when present); bars need ``ts``, ``open``, ``high``, ``low``, ``close`` and
    ``volume``. ``ts`` is datetime64, naive UTC or tz-aware. Returns :data:`BAR_COLUMNS`
    sorted by series and time (without ``exchange``/``symbol`` if the input had none).
    """
    target = parse_interval(interval)
    _check_policy(empty)
    columns = set(data.columns)
    if columns.issuperset(_TRADE_REQUIRED):
        kind = _TRADES
    elif columns.issuperset(_BAR_REQUIRED):
        kind = _BARS
        _check_frame_interval(data, target)
    else:
        raise UsageError(
            f"resample needs trades (columns {', '.join(_TRADE_REQUIRED)}) or bars (columns "
            f"{', '.join(_BAR_REQUIRED)}); got columns {', '.join(map(str, data.columns))}"
        )
    frame = _frame(data, kind.required, kind.optional)
    select = ", ".join(
        [*kind.required, "ord"]
        + [c if c in frame.columns else f"{d} AS {c}" for c, d in kind.optional.items()]
    )
    query = _bars_sql(
        kind, f"(SELECT {select} FROM frame) s", target, empty, order="ord", ordered=True
    )
    out = _query_frame(frame, query, {})
    if "exchange" not in columns and "symbol" not in columns:
        out = out.drop(columns=["exchange", "symbol"])
    return out


def update_bars(
    store: Store,
    interval: str | Interval,
    *,
    from_interval: str | Interval | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
    empty: str = "omit",
    full: bool = False,
) -> int:
    """Bring the store's ``bars`` at ``interval`` up to date; return how many bars were written.

    The source is ``trades``, or the stored bars at ``from_interval``. Incremental: for each
    series that already has bars, its last stored bar is replaced and the buckets after it
    are added, in one transaction, reading the source through a ``ts >=`` range that DuckDB
    prunes with its zone maps; a series that first appears in that tail is computed whole.
    ``full=True`` recomputes everything selected — needed after importing, backfilling or
    cleaning trades older than the last stored bar, to add a series whose trades all predate
    the existing bars, or to switch the empty-bucket policy.

    The process remembers each store's last bars per interval, so only its first update of
    an interval searches the stored bars for them, and later ones cost the same however many
    bars are stored. The replacement checks that memory: the DELETE takes every bar from the
    remembered last ones on and must return exactly those, and the INSERT fails on any other
    bar in its way; if bars were changed by other means (an import, SQL), the update runs
    again with a fresh search.

    Cost of an incremental update (``benchmarks/bench_bars.py``, shared 2-core machine): about
    3.5-4.5 ms whatever the tail — four statements (DuckDB plans each, ~1 ms for the INSERT;
    the commit syncs its WAL) — plus 40-130 ns per trade read (the high end for a tail that
    fits one row group, scanned on one thread, and not yet checkpointed, which DuckDB keeps
    uncompressed in memory). An hour of a liquid pair, ~42k trades: ~8.5-9.5 ms.
    """
    target = parse_interval(interval)
    _check_policy(empty)
    finer = None if from_interval is None else parse_interval(from_interval)
    if finer is not None:
        check_coarser(finer, target)
        if finer == target:
            raise UsageError(f"--from-interval {finer} is the interval being built")
    selection = _Selection(exchange, symbol, finer)
    last = None if full else _LAST_BARS.get(store, target)
    try:
        if last is not None:
            try:
                return _transaction(store, target, selection, empty, full, last)
            except (_Stale, duckdb.ConstraintException):
                _LAST_BARS.forget(store, target)  # bars changed behind our back: search
        return _transaction(store, target, selection, empty, full, None)
    except duckdb.Error as exc:
        raise StoreError(f"updating {target} bars in {store.path} failed: {exc}") from exc


def mid_spread(
    source: Store | pd.DataFrame, *, exchange: str | None = None, symbol: str | None = None
) -> pd.DataFrame:
    """Best bid, best ask, mid and spread per book snapshot, from ``book_snapshots`` rows.

    A snapshot is all rows of one (exchange, symbol, recv_ts); only level 0 is read. ``valid``
    is false when the book was awaiting a resync, so a study can drop those rows. Returns
    columns exchange, symbol, ts, recv_ts, bid, ask, mid, spread, valid in time order.
    """
    params: dict[str, Any] = {}
    conditions = ["level = 0"]
    for column, value in (("exchange", exchange), ("symbol", symbol)):
        if value is not None:
            conditions.append(f"{column} = ${column}")
            params[column] = value
    where = " AND ".join(conditions)
    query = f"""
        SELECT exchange, symbol, ts, recv_ts, bid, ask, (bid + ask) / 2 AS mid,
               ask - bid AS spread, valid
        FROM (
            SELECT exchange, symbol, recv_ts, max(ts) AS ts, bool_and(valid) AS valid,
                   max(price) FILTER (WHERE side = 'bid') AS bid,
                   min(price) FILTER (WHERE side = 'ask') AS ask
            FROM {{source}} WHERE {where}
            GROUP BY exchange, symbol, recv_ts)
        ORDER BY exchange, symbol, recv_ts"""
    if isinstance(source, Store):
        with source.cursor() as cursor:
            return cursor.execute(query.format(source="book_snapshots"), params).df()
    return _query_frame(source, query.format(source="frame"), params)


def _query_frame(frame: pd.DataFrame, query: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run ``query`` over ``frame`` registered as ``frame``; its content is the caller's input."""
    try:
        with _scratch().cursor() as cursor:
            cursor.register("frame", frame)
            return cursor.execute(query, params).df()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(f"cannot compute from this DataFrame: {reason}") from exc


@functools.cache
def _scratch() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB for DataFrame queries, each on its own cursor.

    Connecting costs 15-35 ms, a cursor well under 1 ms; a registered DataFrame is visible
    only to the cursor that registered it, so concurrent callers do not see each other's.
    """
    return duckdb.connect()


# --- the one SQL implementation ------------------------------------------------------------


def _vwap(notional: str, volume: str) -> str:
    """NULL if a piece has no notional (a bar without vwap), or without volume."""
    total = f"sum({notional}) / nullif(sum({volume}), 0)"
    return f"CASE WHEN count({notional}) = count(*) THEN {total} END"


def _trade_aggregates(key: str) -> str:
    """Trades → bar columns; ``key`` orders trades by time, then arrival."""
    return f"""
        arg_min(price, {key}) AS open, max(price) AS high, min(price) AS low,
        arg_max(price, {key}) AS close, sum(size) AS volume,
        {_vwap("price * size", "size")} AS vwap, count(*) AS trades,
        sum(CASE side WHEN 'buy' THEN size WHEN 'sell' THEN 0.0 END) AS buy_volume,
        sum(CASE side WHEN 'sell' THEN size WHEN 'buy' THEN 0.0 END) AS sell_volume"""


def _bar_aggregates(key: str) -> str:
    """Finer bars → bar columns (VWAP weighted by each bar's volume)."""
    notional = "CASE WHEN volume = 0 THEN 0.0 ELSE vwap * volume END"
    return f"""
        arg_min(open, {key}) AS open, max(high) AS high, min(low) AS low,
        arg_max(close, {key}) AS close, sum(volume) AS volume,
        {_vwap(notional, "volume")} AS vwap, sum(trades)::BIGINT AS trades,
        sum(buy_volume) AS buy_volume, sum(sell_volume) AS sell_volume"""


@dataclass(frozen=True)
class _Kind:
    """One kind of input row and how rows of that kind aggregate into a bar."""

    required: tuple[str, ...]
    optional: Mapping[str, str]
    aggregates: Callable[[str], str]
    keep: str = ""
    """A row filter: bars → coarser bars skip carried (empty) bars, which would fake opens and
    closes."""


_TRADES = _Kind(_TRADE_REQUIRED, _TRADE_OPTIONAL, _trade_aggregates)
_BARS = _Kind(_BAR_REQUIRED, _BAR_OPTIONAL, _bar_aggregates, "(volume > 0 OR trades > 0)")


def _bars_sql(
    kind: _Kind,
    source: str,
    interval: Interval,
    empty: str,
    *,
    order: str,
    where: Sequence[str] = (),
    origin: str | None = None,
    extra: str = "",
    ordered: bool = False,
) -> str:
    """Bars of ``interval`` from the rows of ``source`` (a table or subquery aliased ``s``).

    One flat ``SELECT ... GROUP BY`` over the source, which DuckDB plans in about a
    millisecond; the ``carry`` policy adds a spine of buckets on top. ``order`` is the
    arrival order of a row (rowid, or the DataFrame row), ``where`` filters the source.
    ``origin``, a bucket start in epoch µs at or before every selected row (a parameter, so
    the statement's text stays the same from one update to the next), lets the buckets be
    numbered from it: faster to compute and to group by than timestamps. ``extra`` adds
    columns after :data:`BAR_COLUMNS` (an INSERT's constant ``interval``). ``ordered`` sorts by
    series and time, for a DataFrame; an INSERT does not need it.
    """
    us = interval.micros
    if origin is None:
        # Floor division that is also right before 1970: DuckDB's % truncates toward zero.
        group = f"epoch_us(ts) - (epoch_us(ts) % {us} + {us}) % {us}"
        bucket = group
    else:
        group = f"(epoch_us(ts) - {origin}) // {us}"  # rows ≥ origin: truncation floors
        bucket = f"{origin} + ({group}) * {us}"
    conditions = [c for c in (kind.keep, *where) if c]
    filters = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    aggregates = kind.aggregates(f"epoch_us(ts)::HUGEINT * {_ORDER_SCALE} + {order}")
    sort = "ORDER BY exchange, symbol, ts" if ordered else ""
    more = f", {extra}" if extra else ""

    def aggregate(start: str, end: str = "") -> str:
        return f"""
        SELECT exchange, symbol, {start}, {aggregates}{end}
        FROM {source} {filters}
        GROUP BY exchange, symbol, {group}"""

    if empty == "omit":
        return f"{aggregate(f'make_timestamp({bucket}) AS ts', more)} {sort}"
    return f"""
        WITH agg AS MATERIALIZED ({aggregate(f"{bucket} AS bucket")}),
        spine AS (
            SELECT exchange, symbol,
                   unnest(range(min(bucket), max(bucket) + {us}, {us}::BIGINT)) AS bucket
            FROM agg GROUP BY exchange, symbol),
        gaps AS (SELECT * FROM spine ANTI JOIN agg USING (exchange, symbol, bucket)),
        carried AS (
            SELECT g.exchange, g.symbol, g.bucket, a.close, a.close, a.close, a.close,
                   0.0, NULL::DOUBLE, 0::BIGINT, 0.0, 0.0
            FROM gaps g ASOF JOIN agg a
              ON g.exchange = a.exchange AND g.symbol = a.symbol AND g.bucket >= a.bucket),
        filled AS (SELECT * FROM agg UNION ALL SELECT * FROM carried)
        SELECT exchange, symbol, make_timestamp(bucket) AS ts, open, high, low, close,
               volume, vwap, trades, buy_volume, sell_volume{more}
        FROM filled
        {sort}"""


# --- the store door ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Selection:
    """Which series an update covers and what it reads (trades, or bars at ``finer``)."""

    exchange: str | None
    symbol: str | None
    finer: Interval | None

    def series(self, alias: str) -> tuple[list[str], dict[str, Any]]:
        """The --exchange/--symbol filters on a table aliased ``alias``, as named params."""
        conditions: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (("exchange", self.exchange), ("symbol", self.symbol)):
            if value is not None:
                conditions.append(f"{alias}.{column} = ${column}")
                params[column] = value
        return conditions, params

    def matches(self, series: tuple[str, str]) -> bool:
        """Whether the --exchange/--symbol filters select ``series`` (exchange, symbol)."""
        exchange, symbol = series
        return self.exchange in (None, exchange) and self.symbol in (None, symbol)

    def bars(
        self,
        target: Interval,
        empty: str,
        *,
        lower: datetime | None = None,
        origin: int | None = None,
        join: str = "",
    ) -> tuple[str, dict[str, Any]]:
        """The selected source rows (from ``lower`` on) as bar rows to insert, and the params."""
        conditions, params = self.series("s")
        if lower is not None:
            conditions.append("s.ts >= $lower")
            params["lower"] = lower
        if self.finer is None:
            kind, table, order = _TRADES, "trades", "s.rowid"
        else:
            kind, table, order = _BARS, "bars", "0"  # stored bars: one per series and ts
            conditions.append("s.interval = $source_interval")
            params["source_interval"] = self.finer.name
        if origin is not None:
            params["origin"] = origin
        params["interval"] = target.name
        source = f"{table} s {join}"
        sql = _bars_sql(
            kind,
            source,
            target,
            empty,
            order=order,
            where=conditions,
            origin=None if origin is None else "$origin",
            extra="$interval AS interval",
        )
        return sql, params


_INSERT = f"INSERT INTO bars ({', '.join(BAR_COLUMNS)}, interval) "

_Series = tuple[str, str]
"""(exchange, symbol)."""


class _Stale(Exception):
    """The remembered last bars are not the stored ones: bars were changed by other means."""


class _LastBars:
    """Each store's last stored bar per series, by interval, as this process last saw them.

    A record covers every series with bars at its interval (a search is never limited to
    the selected series), so an update can tell a series without bars from one it does not
    know. Records are replaced whole after each committed update and dropped when unsure;
    a store closed and opened again is a new Store, with no records.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: weakref.WeakKeyDictionary[Store, dict[str, dict[_Series, datetime]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, store: Store, interval: Interval) -> dict[_Series, datetime] | None:
        with self._lock:
            record = self._records.get(store, {}).get(interval.name)
            return None if record is None else dict(record)

    def put(self, store: Store, interval: Interval, record: dict[_Series, datetime] | None) -> None:
        with self._lock:
            records = self._records.setdefault(store, {})
            if record is None:
                records.pop(interval.name, None)
            else:
                records[interval.name] = record

    def forget(self, store: Store, interval: Interval) -> None:
        self.put(store, interval, None)


_LAST_BARS = _LastBars()


def _transaction(
    store: Store,
    target: Interval,
    selection: _Selection,
    empty: str,
    full: bool,
    last: dict[_Series, datetime] | None,
) -> int:
    """Run :func:`_update` in one transaction; remember the last bars once it is committed."""
    with store.cursor() as cursor:
        cursor.begin()
        try:
            written, after = _update(cursor, target, selection, empty, full, last)
            cursor.commit()
        except BaseException:
            cursor.rollback()
            raise
    _LAST_BARS.put(store, target, after)
    return written


def _update(
    cursor: duckdb.DuckDBPyConnection,
    target: Interval,
    selection: _Selection,
    empty: str,
    full: bool,
    last: dict[_Series, datetime] | None,
) -> tuple[int, dict[_Series, datetime] | None]:
    """Recompute the selected bars inside the caller's transaction.

    ``last`` holds every series' last bar at ``target`` as remembered, or None to search the
    table. Returns how many bars were written and every series' last bar afterwards (None
    when unknown: after a full build, or when a series' last bar moved back).
    """
    conditions, params = selection.series("b")
    params["interval"] = target.name
    target_where = " AND ".join(["b.interval = $interval", *conditions])
    if full:
        return _rebuild(cursor, target, selection, empty, target_where, params), None
    if last is None:
        search = (
            "SELECT exchange, symbol, max(ts) FROM bars WHERE interval = $interval GROUP BY ALL"
        )
        last = {(e, s): cut for e, s, cut in _run(cursor, search, {"interval": target.name})}
    cuts = {series: cut for series, cut in last.items() if selection.matches(series)}
    if not cuts:
        return _rebuild(cursor, target, selection, empty, target_where, params), None
    # The tail. A series' last stored bucket is the only stored one that trades arriving
    # after the last update can change: it is deleted (the DELETE takes every bar from it
    # on and returns them, which must be exactly the last bars), then every bucket from it
    # on is aggregated from the source rows at or after the oldest series' cut (one constant
    # ts range, which DuckDB prunes with zone maps) and inserted. A series whose cut is
    # later keeps its stored buckets before that cut (a join, only when the cuts differ).
    lower = min(cuts.values())
    origin = _epoch_us(lower) // target.micros * target.micros
    start = _EPOCH + timedelta(microseconds=origin)
    keep, keep_params = "", dict[str, Any]()
    if len(set(cuts.values())) == 1:
        deleted = _run(
            cursor,
            f"DELETE FROM bars b WHERE {target_where} AND b.ts >= $lower "
            "RETURNING exchange, symbol",
            {**params, "lower": lower},
        )
    else:
        values, keep_params = _series_values(cuts)
        deleted = _run(
            cursor,
            f"DELETE FROM bars b USING {values} WHERE {target_where} AND b.ts >= $lower "
            "AND b.exchange = c.exchange AND b.symbol = c.symbol AND b.ts >= c.cut "
            "RETURNING b.exchange, b.symbol",
            {**params, **keep_params, "lower": lower},
        )
        keep = (
            f"LEFT JOIN {values} ON b.exchange = c.exchange AND b.symbol = c.symbol "
            "WHERE c.cut IS NULL OR b.ts >= c.cut"
        )
    if len(deleted) != len(cuts) or set(deleted) != cuts.keys():
        raise _Stale  # a last bar is missing, or there are bars after it
    bars, bars_params = selection.bars(target, empty, lower=start, origin=origin)
    if keep:
        bars = f"SELECT b.* FROM ({bars}) b {keep}"
    inserted = _run(
        cursor, f"{_INSERT}{bars} RETURNING exchange, symbol, ts", {**bars_params, **keep_params}
    )
    after = dict(last)
    for exchange, symbol, ts in inserted:
        known = after.get((exchange, symbol))
        if known is None or ts > known:
            after[exchange, symbol] = ts
    written = len(inserted)
    fresh = after.keys() - last.keys()
    if fresh:
        # A series first seen in the tail got bars from the tail only: compute it whole.
        series_list, series_params = _series_values(dict.fromkeys(fresh))
        _run(
            cursor,
            f"DELETE FROM bars b USING {series_list} "
            f"WHERE {target_where} AND b.exchange = c.exchange AND b.symbol = c.symbol",
            {**params, **series_params},
        )
        join = f"SEMI JOIN {series_list} ON s.exchange = c.exchange AND s.symbol = c.symbol"
        bars, bars_params = selection.bars(target, empty, join=join)
        [(whole,)] = _run(cursor, _INSERT + bars, {**bars_params, **series_params})
        written = int(whole) + sum((e, s) not in fresh for e, s, _ in inserted)
    # A series whose source rows from its cut on were deleted has no bar there any more:
    # its last bar is an older one, which only a search can tell.
    moved_back = cuts.keys() - {(e, s) for e, s, _ in inserted}
    return written, None if moved_back else after


def _rebuild(
    cursor: duckdb.DuckDBPyConnection,
    target: Interval,
    selection: _Selection,
    empty: str,
    target_where: str,
    params: Mapping[str, Any],
) -> int:
    """Replace every selected bar at ``target``; return how many were written."""
    _run(cursor, f"DELETE FROM bars b WHERE {target_where}", params)
    bars, bars_params = selection.bars(target, empty)
    [(written,)] = _run(cursor, _INSERT + bars, bars_params)
    if written == 0 and (selection.exchange or selection.symbol):
        _no_such_series(cursor, selection)
    return int(written)


_PARSED: dict[str, duckdb.Statement] = {}
_PARSED_MAX = 256


def _run(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Execute ``sql`` with its values bound as ``params``; return its rows.

    The text of each statement is parsed once per process: DuckDB's parser costs about half a
    millisecond on the tail's INSERT, a tenth of an update of the last hour. A parsed
    statement is copied by each execution, so threads can share it.
    """
    statement = _PARSED.get(sql)
    if statement is None:
        [statement] = cursor.extract_statements(sql)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[sql] = statement
    return cursor.execute(statement, dict(params)).fetchall()


_EPOCH = datetime(1970, 1, 1)


def _epoch_us(ts: datetime) -> int:
    """Microseconds since the epoch of a naive UTC datetime, exactly (no float)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _series_values(
    cuts: Mapping[tuple[str, str], datetime | None],
) -> tuple[str, dict[str, Any]]:
    """Series and a time each as a VALUES list ``c(exchange, symbol, cut)`` with its params."""
    rows = []
    params: dict[str, Any] = {}
    for i, ((exchange, symbol), cut) in enumerate(cuts.items()):
        rows.append(f"($e{i}, $s{i}, $c{i}::TIMESTAMP)")
        params.update({f"e{i}": exchange, f"s{i}": symbol, f"c{i}": cut})
    return f"(VALUES {', '.join(rows)}) c(exchange, symbol, cut)", params


def _no_such_series(cursor: duckdb.DuckDBPyConnection, selection: _Selection) -> None:
    """A --exchange/--symbol filter matched nothing: UsageError listing what exists."""
    table = "trades" if selection.finer is None else "bars"
    params: dict[str, Any] = {}
    where = ""
    if selection.finer is not None:
        where = "WHERE interval = $source_interval"
        params["source_interval"] = selection.finer.name
    rows = cursor.execute(
        f"SELECT DISTINCT exchange || ' ' || symbol FROM {table} {where} ORDER BY 1", params
    ).fetchall()
    wanted = " ".join(
        f"{k}={v}" for k, v in (("exchange", selection.exchange), ("symbol", selection.symbol)) if v
    )
    what = "trades" if selection.finer is None else f"{selection.finer} bars"
    names = ", ".join(name for (name,) in rows) or "none"
    raise UsageError(f"no {what} for {wanted}; available (exchange symbol): {names}")


# --- DataFrame preparation -------------------------------------------------------------------


def _frame(
    data: pd.DataFrame, required: tuple[str, ...], optional: Mapping[str, str]
) -> pd.DataFrame:
    """The columns the query reads, ``ts`` as naive UTC µs, plus each row's arrival order."""
    names = [*required, *(c for c in optional if c in data.columns)]
    frame = pd.DataFrame({name: data[name] for name in names}).reset_index(drop=True)
    frame["ts"] = _naive_utc(frame["ts"])
    for name in names:
        if name not in ("ts", "exchange", "symbol", "side") and not pd.api.types.is_numeric_dtype(
            frame[name]
        ):
            raise UsageError(f"column {name!r} must be numeric, got {frame[name].dtype}")
    frame["ord"] = np.arange(len(frame), dtype=np.int64)
    return frame


def _naive_utc(ts: pd.Series) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise UsageError(f"column 'ts' must be datetime64 (naive UTC or tz-aware), got {ts.dtype}")
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[us]")


def _check_frame_interval(data: pd.DataFrame, target: Interval) -> None:
    """Bars read from the table carry their interval: refuse ones that do not fit ``target``."""
    if "interval" not in data.columns:
        return
    intervals = {parse_interval(str(v)) for v in data["interval"].dropna().unique()}
    if len(intervals) > 1:
        names = ", ".join(sorted(map(str, intervals)))
        raise UsageError(f"bars of several intervals ({names}); select one before resampling")
    for finer in intervals:
        check_coarser(finer, target)


def _check_policy(empty: str) -> None:
    if empty not in EMPTY_POLICIES:
        raise UsageError(f"empty must be one of {', '.join(EMPTY_POLICIES)}, got {empty!r}")


# --- command line ------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``resample`` on the CLI's sub-command parsers."""
    p = sub.add_parser(
        "resample",
        help="build or update OHLCV bars in the bars table",
        description="Resample trades (or finer bars) into the bars table. Incremental: only "
        "buckets from each series' last stored bar on are recomputed, unless --full.",
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="DuckDB file holding trades")
    p.add_argument("--interval", required=True, help="bar length, 1s to 1d, e.g. 1m, 15m, 1h")
    p.add_argument("--exchange", help="only this exchange")
    p.add_argument("--symbol", help="only this symbol")
    p.add_argument(
        "--empty",
        choices=EMPTY_POLICIES,
        default="omit",
        help="buckets without trades: omit them, or carry the close with zero volume",
    )
    p.add_argument("--from-interval", help="build from stored bars of this interval, not trades")
    p.add_argument("--full", action="store_true", help="recompute every bar, not just the tail")


def run(args: argparse.Namespace) -> int:
    """Validate the flags before touching the file, update, print one summary line."""
    interval = parse_interval(args.interval)
    if args.from_interval is not None:
        check_coarser(parse_interval(args.from_interval), interval)
    if not args.db.exists():
        raise UsageError(f"{args.db} does not exist")
    with Store.open(args.db, create=False) as store:
        written = update_bars(
            store,
            interval,
            from_interval=args.from_interval,
            exchange=args.exchange,
            symbol=args.symbol,
            empty=args.empty,
            full=args.full,
        )
        total = store.sql("SELECT count(*) AS n FROM bars WHERE interval = ?", [interval.name])
    print(f"wrote {written} {interval} bars into {args.db} ({int(total['n'][0])} in total)")
    return 0
