"""Replay a recording: the applied event stream read back in exactly the order it was applied.

Every market row carries ``ingest_seq`` (see :mod:`workbench.store.schema`), so a recording
replays by merging its tables on it. Each table is read per window of ordinals as Arrow data
(the level rows of one book message grouped into one event with numpy), turned into the same
:class:`~workbench.events.Applied` objects a live subscriber receives, and the windows' runs
are merged by ``ingest_seq``: a subscriber's log of a session equals ``list(replay(db))``.

Time filters apply to ``recv_ts`` (for quality incidents, which have no receive time, to
their ``ts``). Feed-wide quality incidents (``symbol`` NULL: a disconnect, a thread error)
are kept whatever ``symbols`` asks for: they concern every symbol of the feed.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from workbench.core.book import OrderBook
from workbench.errors import UsageError
from workbench.events import (
    APPLIED_KINDS,
    Applied,
    AppliedEvent,
    BookChange,
    BookTop,
    QualityEvent,
    Quote,
    Trade,
)
from workbench.store.store import Store

if TYPE_CHECKING:
    from workbench.workbench import Workbench

WINDOW = 1 << 16
"""Ordinals read per query: bounds memory (a store's buffer pool is capped at 64 MB) while
keeping the per-query overhead small."""

TimeLike: TypeAlias = dt.datetime | pd.Timestamp | str | int

# Book tables: one row per level; each event's rows are contiguous, a reset row (side NULL)
# first, then its bids, then its asks, each in the order they were applied. The recorder
# appends rows in that order, so the big tables are read without ORDER BY (a scan keeps
# insertion order) and :func:`_in_order` sorts only a window that is not (a migrated file,
# a depth trim's deletions written after the message's own asks).
_LEVEL_COLUMNS = (
    "ingest_seq, exchange, symbol, epoch_us(ts) AS ts, epoch_us(recv_ts) AS recv_ts, seq, "
    "{flag} AS flag, side = 'ask' AS ask, price, size"
)
_SQL = {
    "trade": (
        "trades",
        "SELECT ingest_seq, exchange, symbol, epoch_us(ts) AS ts, epoch_us(recv_ts) AS recv_ts, "
        "price, size, side, trade_id, seq FROM trades WHERE {where}",
    ),
    "book": (
        "book_deltas",
        f"SELECT {_LEVEL_COLUMNS.format(flag='kind = ' + repr('reset'))} FROM book_deltas "
        "WHERE {where}",
    ),
    "quote": (
        "quotes",
        "SELECT ingest_seq, exchange, symbol, epoch_us(ts) AS ts, epoch_us(recv_ts) AS recv_ts, "
        "bid_price, bid_size, ask_price, ask_size FROM quotes WHERE {where}",
    ),
    "top": (  # one picture per second or so: sorted by DuckDB
        "book_snapshots",
        f"SELECT {_LEVEL_COLUMNS.format(flag='valid')} FROM book_snapshots "
        "WHERE {where} ORDER BY ingest_seq, ask, level",
    ),
    "quality": (
        "quality_events",
        "SELECT ingest_seq, exchange, symbol, epoch_us(ts) AS ts, kind, detail "
        "FROM quality_events WHERE {where}",
    ),
}


def _in_order(kind: str, table: pa.Table) -> pa.Table:
    """``table`` in replay order: by ``ingest_seq``, book rows reset-bids-asks within an event,
    ties in insertion order (a stable sort of the scan)."""
    if kind == "top" or table.num_rows < 2:
        return table
    key = table.column("ingest_seq").to_numpy()
    if kind == "book":  # rank 0 a reset row, 1 a bid, 2 an ask
        ask = table.column("ask")
        is_ask = ask.fill_null(False).to_numpy(zero_copy_only=False)
        key = key * 3 + is_ask + ~ask.is_null().to_numpy(zero_copy_only=False).astype(np.int64)
    if (key[1:] >= key[:-1]).all():
        return table
    return table.take(pa.array(np.argsort(key, kind="stable")))


_FEW_VALUES = frozenset({"exchange", "symbol", "side", "kind"})
"""Text columns with a handful of distinct values: converted through those values."""


def _columns(table: pa.Table) -> list[list[Any]]:
    return [_values(table.column(name), name) for name in table.column_names]


def _values(column: pa.ChunkedArray, name: str = "") -> list[Any]:
    """A column as Python values, faster than ``to_pylist``: numbers through numpy, and text
    with few distinct values through those values (about 2x faster; for unique text such as
    trade ids that route is 10x slower, so it stays ``to_pylist``)."""
    if column.null_count:
        values: list[Any] = column.to_pylist()
        return values
    if name in _FEW_VALUES:
        encoded = column.combine_chunks().dictionary_encode()
        distinct = np.array(encoded.dictionary.to_pylist(), dtype=object)
        return distinct[encoded.indices.to_numpy()].tolist()  # type: ignore[no-any-return]
    if pa.types.is_string(column.type):
        values = column.to_pylist()
        return values
    return column.to_numpy().tolist()  # type: ignore[no-any-return]


Run: TypeAlias = tuple[list[Applied], np.ndarray]
"""One table's events of a window, in order, and their ``ingest_seq`` as an array."""


def _rows(kind: str, event: Callable[..., AppliedEvent]) -> Callable[[pa.Table], Run]:
    """Events whose fields are the query's columns after ``ingest_seq``, in order."""

    def build(table: pa.Table) -> Run:
        seqs, *fields = _columns(table)
        events = list(map(Applied, seqs, repeat(kind), map(event, *fields)))
        return events, table.column("ingest_seq").to_numpy()

    return build


def _grouped(kind: str, event: Callable[..., AppliedEvent]) -> Callable[[pa.Table], Run]:
    """Book events from their level rows: the event boundaries and each one's first ask are
    found with numpy, so Python touches each event once, not each row."""

    def build(table: pa.Table) -> Run:
        n = table.num_rows
        ordinals = table.column("ingest_seq").to_numpy()
        if n == 0:
            return [], ordinals
        starts = np.concatenate(([0], np.flatnonzero(np.diff(ordinals)) + 1))
        ends = np.append(starts[1:], n)
        ask = table.column("ask")
        header = ask.is_null().to_numpy(zero_copy_only=False)  # a reset row: no level
        before_ask = np.concatenate(
            ([0], np.cumsum(~ask.fill_null(True).to_numpy(zero_copy_only=False)))
        )
        bids_from = starts + header[starts]
        asks_from = bids_from + before_ask[ends] - before_ask[starts]
        heads = table.select(["ingest_seq", "exchange", "symbol", "ts", "recv_ts", "seq", "flag"])
        seqs, ex, sym, ts, recv, seq, flag = _columns(heads.take(pa.array(starts)))
        # One (price, size) tuple per row, and each event's sides as slices of their list,
        # all made in C (map over a C callable runs no bytecode per event). A reset row has no
        # level: its NULLs become 0.0 that no slice includes.
        prices = _values(table.column("price").fill_null(0.0))
        sizes = _values(table.column("size").fill_null(0.0))
        cut = list(zip(prices, sizes, strict=True)).__getitem__
        asks_at = asks_from.tolist()
        bids = map(cut, map(slice, bids_from.tolist(), asks_at))
        asks = map(cut, map(slice, asks_at, ends.tolist()))
        changes = map(event, ex, sym, ts, recv, seq, flag, bids, asks)
        events = list(map(Applied, seqs, repeat(kind), changes))
        return events, ordinals[starts]

    return build


_BUILD: dict[str, Callable[[pa.Table], Run]] = {
    "trade": _rows("trade", Trade),
    "book": _grouped("book", BookChange),
    "quote": _rows("quote", Quote),
    "top": _grouped("top", BookTop),
    "quality": _rows("quality", QualityEvent),
}


def _events(kinds: list[str], tables: list[pa.Table]) -> list[Applied]:
    """One window's events of every kind, merged by ``ingest_seq``."""
    # Building ~10^5 acyclic objects would trigger the cyclic collector over and over (a third
    # of the time); it has nothing to find here, so it waits until the window is built.
    enabled = gc.isenabled()
    gc.disable()
    try:
        runs = [
            _BUILD[kind](_in_order(kind, table)) for kind, table in zip(kinds, tables, strict=True)
        ]
        if len(runs) == 1:
            return runs[0][0]
        events = list(chain.from_iterable(run for run, _ in runs))
        if len(events) < 2:
            return events
        # The merge order from the ordinals in numpy; itemgetter picks the events in C.
        order = np.argsort(np.concatenate([ordinals for _, ordinals in runs]), kind="stable")
        return list(itemgetter(*order.tolist())(events))
    finally:
        if enabled:
            gc.enable()


class Replay:
    """An iterable over the :class:`~workbench.events.Applied` events of a recording, in
    ``ingest_seq`` order; with ``books=True``, :attr:`books` holds each (exchange, symbol)'s
    :class:`~workbench.core.book.OrderBook` as it stood after the event last yielded (``valid``
    once a reset was applied; the feed's later doubts about it are the ``quality`` events)."""

    def __init__(
        self,
        store: Store,
        *,
        owned: bool,
        kinds: Sequence[str],
        filters: list[tuple[str, list[Any]]],
        books: bool,
    ) -> None:
        self._store = store
        self._owned = owned
        self.kinds = tuple(kinds)
        self._filters = filters
        self.books: dict[tuple[str, str], OrderBook] = {}
        self._keep_books = books
        self._started = False

    def __iter__(self) -> Generator[Applied, None, None]:
        if self._started:
            raise UsageError("a replay is iterated once; call replay() again to start over")
        self._started = True
        try:
            for window in self._windows():
                if self._keep_books:
                    yield from self._with_books(window)
                else:
                    yield from window
        finally:
            if self._owned:
                self._store.close()

    def _where(self, kind: str) -> tuple[str, list[Any]]:
        clauses, params = ["ingest_seq >= ?", "ingest_seq < ?"], [0, 0]
        for clause, values in self._filters:
            if kind == "quality":  # quality incidents are timed by ts; feed-wide ones kept
                clause = clause.replace("recv_ts", "ts")
                if clause.startswith("symbol"):
                    clause = f"(symbol IS NULL OR {clause})"
            clauses.append(clause)
            params.extend(values)
        return " AND ".join(clauses), params

    def _windows(self) -> Iterator[list[Applied]]:
        queries = {}
        for kind in self.kinds:
            table, template = _SQL[kind]
            where, params = self._where(kind)
            queries[kind] = (template.format(where=where), params, table)
        with self._store.cursor() as cursor, self._store.cursor() as reader:
            bounds = [
                cursor.execute(f"SELECT min(ingest_seq), max(ingest_seq) FROM {table}").fetchall()[
                    0
                ]
                for _, _, table in queries.values()
            ]
            lows = [lo for lo, _ in bounds if lo is not None]
            if not lows:
                return
            low, high = min(lows), max(hi for _, hi in bounds if hi is not None)

            def read(start: int) -> list[pa.Table]:
                return [
                    reader.sql(sql, params=[start, start + WINDOW, *params[2:]]).to_arrow_table()
                    for sql, params, _ in queries.values()
                ]

            start = low
            pending: Future[list[pa.Table]] | None = _read_ahead(read, start)
            try:
                while pending is not None:
                    tables = pending.result()
                    start += WINDOW
                    pending = _read_ahead(read, start) if start <= high else None
                    window = _events(list(queries), tables)
                    if window:
                        yield window
            finally:
                if pending is not None:  # the iteration was left early: let the read end first
                    wait([pending])

    def _with_books(self, window: Iterable[Applied]) -> Iterator[Applied]:
        books = self.books
        for applied in window:
            change = applied.event
            if type(change) is BookChange:
                key = (change.exchange, change.symbol)
                book = books.get(key)
                if book is None:
                    book = books[key] = OrderBook()
                apply_change(book, change)
            yield applied


def _read_ahead(read: Callable[[int], list[pa.Table]], start: int) -> Future[list[pa.Table]]:
    """``read(start)`` on a helper thread that ends with it: DuckDB runs the queries without
    the GIL, so the next window is read while the caller builds the current one's events."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="wb-replay-read")
    try:
        return pool.submit(read, start)
    finally:
        pool.shutdown(wait=False)


def apply_change(book: OrderBook, change: BookChange) -> None:
    """Bring ``book`` to where ``change`` left the live one (a reset starts it afresh)."""
    if change.reset:
        book.clear()
        book.valid = True
    for price, size in change.bids:
        book.set_bid(price, size)
    for price, size in change.asks:
        book.set_ask(price, size)
    book.seq = change.seq
    book.ts = change.ts


def recorded_markets(db: str | Path | Store) -> list[tuple[str, str]]:
    """The (exchange, symbol) pairs a recording holds market data for, sorted."""
    store, owned = _store(db)
    try:
        with store.cursor() as cursor:
            rows = cursor.execute(
                " UNION ".join(
                    f"SELECT DISTINCT exchange, symbol FROM {table}"
                    for table in ("trades", "book_deltas", "quotes")
                )
                + " ORDER BY 1, 2"
            ).fetchall()
    finally:
        if owned:
            store.close()
    return [(exchange, symbol) for exchange, symbol in rows]


def replay(
    db: str | Path | Store | Workbench,
    *,
    exchange: str | None = None,
    symbols: Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    kinds: Sequence[str] | None = None,
    books: bool = False,
) -> Replay:
    """The applied events of a recording, in the order the feed applied them.

    ``db``: a path (opened read-only, closed when the iteration ends; a file this process
    already has open is read through that store), a :class:`~workbench.store.Store` or a
    :class:`~workbench.Workbench` (rows the writer has not committed yet are not seen: flush
    first). ``start`` (inclusive) and ``end`` (exclusive) take a datetime, a pandas
    Timestamp, an ISO string or µs since the epoch, naive UTC. ``kinds`` from
    :data:`~workbench.events.APPLIED_KINDS` (default all). ``books=True`` maintains the books
    on the returned :class:`Replay` as it is iterated."""
    chosen = list(APPLIED_KINDS) if kinds is None else list(dict.fromkeys(kinds))
    unknown = [k for k in chosen if k not in APPLIED_KINDS]
    if unknown or not chosen:
        raise UsageError(
            f"unknown event kinds {unknown or chosen}; choose from {', '.join(APPLIED_KINDS)}"
        )
    filters: list[tuple[str, list[Any]]] = []
    if exchange is not None:
        filters.append(("exchange = ?", [exchange]))
    if symbols is not None:
        if isinstance(symbols, str) or not symbols:
            raise UsageError("symbols must be a non-empty list of symbols, e.g. ['BTC-USD']")
        filters.append((f"symbol IN ({', '.join('?' * len(symbols))})", list(symbols)))
    low, high = micros(start, "start"), micros(end, "end")
    if low is not None and high is not None and high <= low:
        raise UsageError(f"end ({end}) must be after start ({start})")
    if low is not None:
        filters.append(("recv_ts >= make_timestamp(?)", [low]))
    if high is not None:
        filters.append(("recv_ts < make_timestamp(?)", [high]))
    store, owned = _store(db)
    return Replay(store, owned=owned, kinds=chosen, filters=filters, books=books)


def micros(value: TimeLike | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"{name} must be a time (datetime, ISO text or µs), got {value!r}"
        ) from exc
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value // 1000)


def _store(db: str | Path | Store | Workbench) -> tuple[Store, bool]:
    if isinstance(db, Store):
        return db, False
    if isinstance(db, (str, Path)):
        existing = Store.opened(db)
        if existing is not None:
            return existing, False
        return Store.open(db, read_only=True, create=False), True
    store = getattr(db, "store", None)
    if isinstance(store, Store):
        return store, False
    raise UsageError(f"replay() reads a path, a Store or a Workbench, got {type(db).__name__}")
