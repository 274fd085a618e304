"""What a feed hands on: the rows it records and the applied events its subscribers receive.

A live :class:`~workbench.feeds.feed.Feed` and a :class:`~workbench.feeds.replay_feed.ReplayFeed`
both end in a :class:`Recorder`: per table a column batch for the store's writer, one
``ingest_seq`` drawn from the file per applied event (so the rows of one event share it and
replay merges the tables in apply order), and the same events, as
:class:`~workbench.events.Applied`, for the subscribers — built only while there are some.

Not thread-safe by itself: the owning feed calls it with its lock held, from whichever of its
threads applies events. :meth:`Recorder.flush` hands the batches to the sink.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from workbench.core.clock import Clock
from workbench.core.sync import Trim
from workbench.errors import StoreError
from workbench.events import (
    Applied,
    BookChange,
    BookDelta,
    BookSnapshot,
    BookTop,
    Level,
    QualityEvent,
    Quote,
    Trade,
)
from workbench.feeds.subscription import Subscription, Target
from workbench.store.batch import TableBatch
from workbench.store.schema import raw_text

log = logging.getLogger(__name__)


class RowSink(Protocol):
    """Where finished column batches go: the store's writer (or anything with ``submit``)."""

    def submit(self, table: str, columns: dict[str, Any]) -> None: ...

    @property
    def ingest_seqs(self) -> Iterator[int]:
        """The file's ``ingest_seq`` ordinals; the feed draws one per applied event."""

    @property
    def fault(self) -> str | None:
        """Why rows cannot be stored right now (None while they can): the feed stops on it."""

    def wait_for_room(self, timeout: float) -> bool:
        """Block, at most ``timeout`` s, while the sink holds as many rows as it may; True once
        it has room. The store's writer bounds its queue this way (backpressure)."""


class Recorder:
    """The rows and the subscriber events of one feed (``exchange``), in apply order."""

    def __init__(self, exchange: str, sink: RowSink, clock: Clock) -> None:
        self.exchange = exchange
        self.sink = sink
        self.clock = clock
        self.next_ingest_seq = sink.ingest_seqs.__next__
        self.trades = TableBatch("trades")
        self.deltas = TableBatch("book_deltas")
        self.quotes = TableBatch("quotes")
        self.snapshots = TableBatch("book_snapshots")
        self.quality_rows = TableBatch("quality_events")
        self.quarantine_rows = TableBatch("quarantine")
        self.instruments = TableBatch("instruments")
        self._trade_row = self.trades.appenders()
        self._delta_row = self.deltas.appenders()
        (
            self._d_exchange, self._d_symbol, self._d_ts, self._d_recv, self._d_seq,
            self._d_kind, self._d_side, self._d_price, self._d_size, self._d_ingest_seq,
        ) = self._delta_row  # fmt: skip
        self._quote_row = self.quotes.appenders()
        self._snapshot_row = self.snapshots.appenders()
        self._quality_row = self.quality_rows.appenders()
        self._quarantine_row = self.quarantine_rows.appenders()
        self._instrument_row = self.instruments.appenders()
        self.subscribers: list[Subscription] = []
        self.published: list[Applied] | None = None
        """Applied events not yet handed to the subscribers; None while there are none, so
        the hot path skips building them."""
        self.sink_error: str | None = None
        """Why the sink refused a batch (the writer is gone); the feed fails on it."""

    # -- rows ------------------------------------------------------------------------------
    def trade(self, t: Trade) -> None:
        exchange, symbol, ts, recv, price, size, side, trade_id, seq, ingest_seq = self._trade_row
        exchange(t.exchange)
        symbol(t.symbol)
        ts(t.ts)
        recv(t.recv_ts)
        price(t.price)
        size(t.size)
        side(t.side)
        trade_id(t.trade_id)
        seq(t.seq)
        ordinal = self.next_ingest_seq()
        ingest_seq(ordinal)
        if self.published is not None:
            self.published.append(Applied(ordinal, "trade", t))

    def book_row(
        self,
        symbol: str,
        ts: int,
        recv_ts: int,
        seq: int | None,
        kind: str,
        side: str | None,
        price: float | None,
        size: float | None,
        ingest_seq: int,
    ) -> None:
        """One ``book_deltas`` row: a level change, a snapshot level, or a reset (no side)."""
        exchange, sym, ts_, recv, seq_, kind_, side_, price_, size_, ordinal = self._delta_row
        exchange(self.exchange)
        sym(symbol)
        ts_(ts)
        recv(recv_ts)
        seq_(seq)
        kind_(kind)
        side_(side)
        price_(price)
        size_(size)
        ordinal(ingest_seq)

    # -- SyncOutput: what a BookSync applied, and what went wrong ----------------------------
    def applied_delta(self, symbol: str, d: BookDelta, trimmed: Trim | None) -> None:
        exchange = self.exchange
        ingest_seq = self.next_ingest_seq()
        # The hot path appends inline (not through book_row): one call fewer per level.
        for side, levels in (("bid", d.bids), ("ask", d.asks)):
            for price, size in levels:
                self._d_exchange(exchange)
                self._d_symbol(symbol)
                self._d_ts(d.ts)
                self._d_recv(d.recv_ts)
                self._d_seq(d.seq)
                self._d_kind("delta")
                self._d_side(side)
                self._d_price(price)
                self._d_size(size)
                self._d_ingest_seq(ingest_seq)
        if trimmed is not None:
            self._trimmed(symbol, d.ts, d.recv_ts, d.seq, trimmed, ingest_seq)
        if self.published is not None and (d.bids or d.asks or trimmed):
            bids, asks = (
                (d.bids, d.asks) if trimmed is None else (d.bids + trimmed[0], d.asks + trimmed[1])
            )
            change = BookChange(exchange, symbol, d.ts, d.recv_ts, d.seq, False, bids, asks)
            self.published.append(Applied(ingest_seq, "book", change))

    def applied_snapshot(self, symbol: str, snap: BookSnapshot, trimmed: Trim | None) -> None:
        """A reset and the levels in the delta stream: the deltas alone rebuild every book."""
        bids = [lv for lv in snap.bids if lv[1] > 0]
        asks = [lv for lv in snap.asks if lv[1] > 0]
        if trimmed is not None:
            bids += trimmed[0]
            asks += trimmed[1]
        self.book_change(
            BookChange(self.exchange, symbol, snap.ts, snap.recv_ts, snap.seq, True, bids, asks)
        )

    def book_change(self, change: BookChange) -> None:
        """One applied book message as recorded: a reset's levels are ``snapshot`` rows except
        the depth trim's deletions (size 0), which are ``delta`` rows like every other change."""
        ingest_seq = self.next_ingest_seq()
        row = self.book_row
        symbol, ts, recv_ts, seq, reset = (
            change.symbol,
            change.ts,
            change.recv_ts,
            change.seq,
            change.reset,
        )
        if reset:
            row(symbol, ts, recv_ts, seq, "reset", None, None, None, ingest_seq)
        for side, levels in (("bid", change.bids), ("ask", change.asks)):
            for price, size in levels:
                kind = "snapshot" if reset and size > 0 else "delta"
                row(symbol, ts, recv_ts, seq, kind, side, price, size, ingest_seq)
        if self.published is not None:
            self.published.append(Applied(ingest_seq, "book", change))

    def _trimmed(
        self, symbol: str, ts: int, recv_ts: int, seq: int | None, trimmed: Trim, ingest_seq: int
    ) -> None:
        """The levels a depth trim cut, as deletions: replaying book_deltas gives this book."""
        row = self.book_row
        for side, levels in (("bid", trimmed[0]), ("ask", trimmed[1])):
            for price, _ in levels:
                row(symbol, ts, recv_ts, seq, "delta", side, price, 0.0, ingest_seq)

    def incident(self, symbol: str | None, kind: str, detail: dict[str, Any]) -> None:
        self.quality(symbol, kind, detail)

    def quote(self, q: Quote) -> None:
        exchange, symbol, ts, recv, bid_price, bid_size, ask_price, ask_size, ingest_seq = (
            self._quote_row
        )
        exchange(q.exchange)
        symbol(q.symbol)
        ts(q.ts)
        recv(q.recv_ts)
        bid_price(q.bid_price)
        bid_size(q.bid_size)
        ask_price(q.ask_price)
        ask_size(q.ask_size)
        ordinal = self.next_ingest_seq()
        ingest_seq(ordinal)
        if self.published is not None:
            self.published.append(Applied(ordinal, "quote", q))

    def quality(
        self, symbol: str | None, kind: str, detail: dict[str, Any] | str, *, ts: int | None = None
    ) -> None:
        """A quality incident at ``ts`` (default now); ``detail`` a JSON-ready dict, or JSON
        text as recorded."""
        exchange, sym, ts_, kind_, detail_, ingest_seq = self._quality_row
        now = self.clock.time_us() if ts is None else ts
        text = detail if isinstance(detail, str) else json.dumps(detail, separators=(",", ":"))
        ordinal = self.next_ingest_seq()
        exchange(self.exchange)
        sym(symbol)
        ts_(now)
        kind_(kind)
        detail_(text)
        ingest_seq(ordinal)
        if self.published is not None:
            event = QualityEvent(self.exchange, symbol, now, kind, text)
            self.published.append(Applied(ordinal, "quality", event))

    def quarantine(self, recv_ts: int, reason: str, raw: bytes, *, truncated: bool) -> None:
        """Keep a bad message with the reason; ``truncated``: only its first bytes are known."""
        exchange, ts, why, text, length = self._quarantine_row
        exchange(self.exchange)
        ts(recv_ts)
        why(reason)
        text(raw_text(raw))
        length(None if truncated else len(raw))

    def top(
        self,
        symbol: str,
        ts: int,
        recv_ts: int,
        seq: int | None,
        valid: bool,
        bids: list[Level],
        asks: list[Level],
    ) -> None:
        """One symbol's top-N ``book_snapshots`` rows, all at one ordinal."""
        exchange, sym, ts_, recv, seq_, valid_, side_, level_, price_, size_, ingest_seq = (
            self._snapshot_row
        )
        ordinal = self.next_ingest_seq()
        for side, levels in (("bid", bids), ("ask", asks)):
            for i, (price, size) in enumerate(levels):
                exchange(self.exchange)
                sym(symbol)
                ts_(ts)
                recv(recv_ts)
                seq_(seq)
                valid_(valid)
                side_(side)
                level_(i)
                price_(price)
                size_(size)
                ingest_seq(ordinal)
        if self.published is not None and (bids or asks):
            event = BookTop(self.exchange, symbol, ts, recv_ts, seq, valid, bids, asks)
            self.published.append(Applied(ordinal, "top", event))

    def instrument(self, symbol: str, base: str | None, quote: str | None) -> None:
        """A symbol with its normalized ``BASE-QUOTE`` pair, for joins across venues."""
        exchange, sym, pair, base_, quote_ = self._instrument_row
        exchange(self.exchange)
        sym(symbol)
        pair(f"{base}-{quote}" if base and quote else None)
        base_(base)
        quote_(quote)

    def flush(self) -> None:
        """Hand pending events to the subscribers and pending rows to the sink; a sink that
        refuses sets :attr:`sink_error` (rows after it stay pending)."""
        if self.published:
            self.publish()
        for batch in (
            self.instruments,
            self.trades,
            self.deltas,
            self.quotes,
            self.snapshots,
            self.quality_rows,
            self.quarantine_rows,
        ):
            if len(batch):
                try:
                    self.sink.submit(batch.table.name, batch.take())
                except StoreError as exc:
                    self.sink_error = str(exc)
                    return

    # -- subscribers -----------------------------------------------------------------------
    def subscribe(
        self,
        target: Target,
        *,
        name: str,
        kinds: Sequence[str] | None,
        symbols: Sequence[str] | None,
        maxsize: int,
        on_close: Callable[[Subscription], None],
    ) -> Subscription:
        """A started subscription; ``on_close`` must take the feed's lock and :meth:`forget` it."""
        subscription = Subscription(
            target, name=name, kinds=kinds, symbols=symbols, maxsize=maxsize, on_close=on_close
        ).start()
        self.subscribers.append(subscription)
        if self.published is None:
            self.published = []
        return subscription

    def forget(self, subscription: Subscription) -> None:
        """A subscription closed: deliver nothing more to it."""
        if subscription in self.subscribers:
            self.subscribers.remove(subscription)
        if not self.subscribers:
            self.published = None

    def publish(self) -> None:
        """Hand the events applied since the last call to every subscriber."""
        events = self.published
        if not events:
            return
        overflows = [(sub, sub.offer(events)) for sub in self.subscribers]
        events.clear()
        for sub, dropped in overflows:
            if dropped:
                detail = {"subscriber": sub.name, "queue": sub.maxsize, "dropped": dropped}
                log.warning("subscriber %s fell %d events behind; dropping", sub.name, dropped)
                self.quality(None, "subscriber_overflow", detail)
