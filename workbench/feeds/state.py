"""What a live feed's threads share under its one lock: the symbols' sync machines, the live
connections, the recorder and the counters the status reports.

The connection threads (:mod:`workbench.feeds.stream`) and the maintenance worker
(:mod:`workbench.feeds.worker`) read and write it with :attr:`FeedState.lock` held; readers
(widgets, ``status()``) take the lock for a consistent view.
"""

from __future__ import annotations

import threading
from typing import Any

from workbench.core.book import OrderBook
from workbench.core.clock import Clock
from workbench.core.sync import BookSync, SyncRules
from workbench.errors import ProtocolError
from workbench.events import Quote, Trade
from workbench.feeds.recorder import Recorder, RowSink
from workbench.feeds.tape import TradeTape
from workbench.venues import VenueProtocol


class SymbolState:
    """One symbol: its :class:`~workbench.core.sync.BookSync`, the subscription's
    acknowledgement, the trade tape for live views, the last polled quote."""

    __slots__ = ("acked", "acked_once", "last_quote", "name", "rejected", "sync", "tape")

    def __init__(self, sync: BookSync) -> None:
        self.name = sync.symbol
        self.sync = sync
        self.tape = TradeTape()
        self.acked: set[int] = set()  # connections whose subscription the venue acknowledged
        self.acked_once = False
        self.rejected: str | None = None  # the venue's refusal, until an acknowledgement
        self.last_quote: tuple[int, float, float, float, float] | None = None  # polling

    @property
    def book(self) -> OrderBook:
        return self.sync.book


class FeedState:
    """The shared state of one feed of ``venue`` recording ``symbols`` into ``sink``."""

    def __init__(
        self,
        name: str,
        venue: VenueProtocol,
        symbols: list[str],
        rules: SyncRules,
        sink: RowSink,
        clock: Clock,
        conns: range,
    ) -> None:
        self.lock = threading.Lock()
        self.name = name
        self.clock = clock
        self.venue_cls = venue_cls = type(venue)
        self.exchange = venue_cls.name
        self.symbol_names = symbols
        self.venue = venue
        """The protocol instance for REST; each connection's session gets its own."""
        self.venues = {conn: venue_cls(symbols) for conn in conns}
        """The protocol instance serving each connection's current session."""
        self.rec = Recorder(self.exchange, sink, clock)
        self.symbols = {
            s: SymbolState(BookSync(s, rules, self.rec, self.checksum)) for s in symbols
        }
        self.live: set[int] = set()
        """Connections up now (0: the REST poller, while its polls are answered)."""
        # counters
        self.messages = 0
        self.trades = 0
        self.quotes = 0
        self.reconnects = 0
        self.stale = 0
        self.backfilled = 0
        self.quarantined = 0
        self.held_back = 0.0
        """Seconds the connection threads waited for room in the store's writer."""
        self.last_error: str | None = None
        self.last_message_at: float | None = None
        self.last_lag_us: int | None = None
        self.rate = 0.0
        self._rate_mark = (clock.now(), 0)

    def state(self, symbol: str) -> SymbolState:
        st = self.symbols.get(symbol)
        if st is None:
            raise ProtocolError(f"message for unsubscribed symbol {symbol!r}")
        return st

    def checksum(self, conn: int, symbol: str, book: OrderBook) -> int | None:
        """The venue's checksum of ``book`` as connection ``conn``'s session computes it."""
        venue = self.venues.get(conn)
        return None if venue is None else venue.checksum(symbol, book)

    def quality(self, symbol: str | None, kind: str, detail: dict[str, Any]) -> None:
        self.rec.quality(symbol, kind, detail)

    def quarantine(self, recv_ts: int, reason: str, raw: bytes, *, truncated: bool = False) -> None:
        """Keep a bad message with the reason; ``truncated``: only its first bytes are known."""
        self.quarantined += 1
        self.rec.quarantine(recv_ts, reason, raw, truncated=truncated)

    def record_trade(self, st: SymbolState, t: Trade) -> None:
        self.rec.trade(t)
        self.trades += 1
        st.tape.append(t)

    def record_quote(self, q: Quote) -> None:
        self.state(q.symbol)
        self.rec.quote(q)
        self.quotes += 1
        self.last_lag_us = q.recv_ts - q.ts

    def write_snapshots(self, depth: int) -> None:
        """Every synced book's top ``depth`` levels as ``book_snapshots`` rows, now."""
        recv_ts = self.clock.time_us()
        for st in self.symbols.values():
            if st.sync.synced_once:
                book = st.book
                bids, asks = book.top(depth)
                self.rec.top(st.name, book.ts, recv_ts, book.seq, book.valid, bids, asks)

    def update_rate(self, now: float) -> None:
        mark_time, mark_count = self._rate_mark
        if now - mark_time >= 1.0:
            self.rate = (self.messages - mark_count) / (now - mark_time)
            self._rate_mark = (now, self.messages)
