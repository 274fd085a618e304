"""A live feed: venue protocol + connections + books + recording, for one venue and its symbols.

Threads (see docs/architecture.md, "Threads"): each connection thread receives, parses,
sequences and applies under the feed's lock and appends rows to column batches; one maintenance
thread per feed hands the batches to the store's writer every 50 ms, writes top-N book snapshots
every second, declares gaps that time out, and does the slow work — REST snapshots for resyncs
and REST trade backfill — outside the lock, so receiving never waits on HTTP.

A connection proves nothing until the venue acknowledges the subscription
(:class:`~workbench.events.Subscribed`; for venues that send no acknowledgement, a symbol's
first market data): only then is a symbol reported subscribed, may its connection count as
healthy, and is a book that starts from REST fetched, at once, so a quiet pair gets one
too. A refusal (:class:`~workbench.events.SubscriptionRejected`) shows in the status.

Nothing a venue sends can kill a connection thread: a message that fails to parse, names an
unknown symbol or breaks an invariant goes to ``quarantine`` with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from workbench.clock import WALL
from workbench.core.book import OrderBook
from workbench.core.clock import Clock
from workbench.core.sequencer import SymbolSequencer
from workbench.core.trades import TradeIdTracker
from workbench.errors import FeedError, ProtocolError, UsageError
from workbench.events import (
    Applied,
    BookChange,
    BookDelta,
    BookSnapshot,
    Heartbeat,
    Level,
    MarketEvent,
    Quote,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    SyncLost,
    Trade,
)
from workbench.feeds.connection import Backoff, Connection
from workbench.feeds.recorder import Recorder, RowSink
from workbench.feeds.rest import RestClient
from workbench.feeds.status import FeedStatus
from workbench.feeds.subscription import QUEUE_SIZE, Subscription, Target
from workbench.feeds.tape import TradeTape
from workbench.threads import SupervisedThread, ThreadError, join_all
from workbench.venues import VenueProtocol, get_venue
from workbench.venues.base import SeqRule

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 0.05
RESUBSCRIBE_TIMEOUT = 3.0
"""Seconds to wait for the fresh book a resubscribe asked for before asking again."""
RECONNECT_TIMEOUT = 5.0
"""Same, when the resync reconnected instead (the reconnect itself may back off)."""
STORED_DEPTH = 20
"""Levels per side stored in ``book_snapshots`` when no depth is chosen."""
TWIN_WINDOW = 4096
"""Applied deltas kept per symbol so a redundant connection's copy can be compared."""


T = TypeVar("T")


class _Symbol:
    """Everything the feed tracks for one symbol."""

    __slots__ = (
        "acked",
        "acked_once",
        "applied",
        "backfill_after",
        "book",
        "crossed",
        "flagged",
        "generation",
        "last_quote",
        "missing_since",
        "name",
        "rejected",
        "resync_at",
        "resync_attempt",
        "seq",
        "synced_once",
        "tape",
        "trades",
    )

    def __init__(self, name: str, gap_timeout: float, rule: SeqRule) -> None:
        self.name = name
        self.book = OrderBook()
        self.seq: SymbolSequencer[BookDelta] = SymbolSequencer(gap_timeout=gap_timeout, rule=rule)
        self.flagged = False  # a check failed outside the sequencer: resync wanted
        self.crossed = False  # inside a crossed stretch the venue calls legitimate
        self.last_quote: tuple[int, float, float, float, float] | None = None  # polling
        self.generation = 0  # bumped when the stream restarts: a REST book fetched before
        # that belongs to the old stream and must not be applied to the new one
        self.trades = TradeIdTracker()
        self.synced_once = False
        self.resync_at = 0.0
        self.resync_attempt = 0
        self.missing_since: float | None = None
        self.backfill_after = 0.0
        self.applied: dict[int, BookDelta] = {}
        self.tape = TradeTape()
        self.acked: set[int] = set()  # connections whose subscription the venue acknowledged
        self.acked_once = False
        self.rejected: str | None = None  # the venue's refusal, until an acknowledgement

    @property
    def wants_resync(self) -> bool:
        return self.seq.needs_resync or self.flagged


class Feed:
    """Records one venue's trades and L2 books for ``symbols`` until ``stop()``."""

    def __init__(
        self,
        venue: str | type[VenueProtocol],
        symbols: Sequence[str],
        sink: RowSink,
        *,
        ws_url: str | None = None,
        rest_url: str | None = None,
        redundant: bool = False,
        backfill: bool = True,
        depth: int | None = None,
        snapshot_interval: float = 1.0,
        gap_timeout: float = 0.5,
        backfill_delay: float = 0.3,
        max_message: int = 4 * 1024 * 1024,
        poll_interval: float | None = None,
        handshake_timeout: float = 5.0,
        name: str | None = None,
        clock: Clock = WALL,
    ) -> None:
        if not symbols:
            raise UsageError("a feed needs at least one symbol")
        if poll_interval is not None and (poll_interval <= 0 or redundant):
            raise UsageError("poll_interval must be > 0 and cannot be combined with redundant")
        if depth is not None and depth < 1:
            raise UsageError(f"depth must be at least 1, got {depth}")
        venue_cls = get_venue(venue) if isinstance(venue, str) else venue
        if depth is not None:  # the subscribed depth where the venue offers a choice
            venue_cls = venue_cls.at_depth(depth)
        if redundant and not venue_cls.sequenced:
            raise UsageError(
                f"{venue_cls.name} numbers no book messages, so a redundant connection's "
                "copy cannot be merged; record it without redundant"
            )
        self.symbols = list(dict.fromkeys(symbols))
        self.clock = clock
        """Every timer of the feed reads it: heartbeats, the silence watchdog, the gap timeout,
        resync and backfill delays, the snapshot interval, and the row timestamps it stamps."""
        self.venue_cls = venue_cls
        self.venue = venue_cls(self.symbols)  # for REST; each connection gets its own
        self.exchange = venue_cls.name
        self.name = name or f"{self.exchange}:{','.join(self.symbols)}"
        self.sink = sink
        self.ws_url = ws_url or venue_cls.default_ws_url
        if poll_interval is None and urlsplit(self.ws_url).scheme not in ("ws", "wss"):
            raise UsageError(f"ws_url must start with ws:// or wss://, got {self.ws_url!r}")
        rest = rest_url or venue_cls.default_rest_url
        try:
            self.rest = RestClient(rest) if rest else None
        except FeedError as exc:
            raise UsageError(str(exc)) from None
        if poll_interval is not None and self.rest is None:
            raise UsageError(f"polling {self.exchange} needs a REST URL (rest_url=...)")
        self.poll_interval = poll_interval
        self.backfill = (backfill or poll_interval is not None) and self.rest is not None
        self.depth = depth or STORED_DEPTH
        """Levels per side written to ``book_snapshots``."""
        self.snapshot_interval = snapshot_interval
        self.backfill_delay = backfill_delay
        self.redundant = redundant

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._symbols = {s: _Symbol(s, gap_timeout, venue_cls.seq_rule) for s in self.symbols}
        self._live: set[int] = set()
        conns = range(1, 3 if redundant else 2) if poll_interval is None else range(0)
        self._venues = {conn: venue_cls(self.symbols) for conn in conns}
        self._connections = [
            Connection(
                conn,
                self.ws_url,
                self,
                heartbeat=self._heartbeat_message(conn),
                heartbeat_interval=venue_cls.heartbeat_interval,
                stale_after=venue_cls.stale_after,
                max_message=max_message,
                connect_timeout=handshake_timeout,
                backoff=Backoff(),
                name=self.name,
                on_error=self._on_thread_error,
                clock=clock,
            )
            for conn in conns
        ]
        # The maintenance loop keeps all its state on the feed: after a bug it is restarted.
        self._maintainer = SupervisedThread(
            self._maintain,
            name=f"wb-{self.name}-maint",
            restart=True,
            on_error=self._on_thread_error,
            stop=self._stop,
        )
        self._started = False
        self._stopped = False

        self._rec = Recorder(self.exchange, sink, clock)
        self._next_ingest_seq = self._rec.next_ingest_seq
        (
            self._d_exchange, self._d_symbol, self._d_ts, self._d_recv, self._d_seq,
            self._d_kind, self._d_side, self._d_price, self._d_size, self._d_ingest_seq,
        ) = self._rec.deltas.appenders()  # fmt: skip

        # counters (written under the lock, read without it for status)
        self.messages = 0
        self.trade_count = 0
        self.quote_count = 0
        self.reconnects = 0
        self.gaps = 0
        self.resyncs = 0
        self.duplicates = 0
        self.crossed = 0
        self.checksums = 0
        self.mismatches = 0
        self.stale = 0
        self.backfilled = 0
        self.quarantined = 0
        self.thread_errors = 0
        self.last_thread_error: str | None = None
        self.lingering: list[str] = []
        """Threads of this feed still alive after :meth:`stop` gave up waiting for them."""
        self._last_message_at: float | None = None
        self._last_lag_us: int | None = None
        self._rate = 0.0
        self._rate_mark = (self.clock.now(), 0)
        self._connected_before: set[int] = set()
        self._polled_once = False
        self.last_error: str | None = None
        self.failure: str | None = None
        """Set by :meth:`fail`: why the feed stopped itself."""

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Feed:
        if self._started:
            raise UsageError(f"feed {self.name} was already started")
        self._started = True
        self._add_instruments()
        for connection in self._connections:
            connection.start()
        self._maintainer.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every thread, write the final book snapshots and hand all rows to the sink."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        self._stop.set()
        if self.rest is not None:
            self.rest.abort()
        for connection in self._connections:
            connection.stop()
        threads = [c.thread for c in self._connections] + [self._maintainer]
        lingering = join_all(threads, timeout, owner=f"feed {self.name}")
        with self._lock:
            self.lingering = lingering
            self._live.clear()
            self._write_snapshots(self.clock.time_us())
            self._flush_locked()
            subscribers = list(self._rec.subscribers)
        for subscription in subscribers:
            subscription.close(timeout)

    def subscribe(
        self,
        target: Target,
        *,
        kinds: Sequence[str] | None = None,
        symbols: Sequence[str] | None = None,
        maxsize: int = QUEUE_SIZE,
        name: str | None = None,
    ) -> Subscription:
        """Deliver this feed's applied events (:class:`~workbench.events.Applied`, in apply
        order) to ``target`` — a callable or a ``queue.Queue`` — from a thread of its own;
        ``kinds`` from :data:`~workbench.events.APPLIED_KINDS` (default all), ``symbols`` a
        subset of the feed's (default all). See :mod:`workbench.feeds.subscription` for the
        bounded queue. :meth:`Subscription.close` or :meth:`stop` ends it."""
        if self._stopped:
            raise UsageError(f"feed {self.name} is stopped; subscribe to a running feed")
        unknown = [s for s in symbols or () if s not in self._symbols]
        if unknown:
            raise UsageError(f"{self.name} does not record {unknown} (it has {self.symbols})")
        with self._lock:
            label = name or f"{self.name}#{len(self._rec.subscribers) + 1}"
            return self._rec.subscribe(
                target, name=label, kinds=kinds, symbols=symbols, maxsize=maxsize,
                on_close=self._forget,
            )  # fmt: skip

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            self._rec.forget(subscription)

    def fail(self, reason: str) -> None:
        """Give up: the feed cannot do its job (its rows cannot be stored, a thread it needs
        died). Safe from any thread, the feed's own included: it asks every thread to end
        and returns at once; :meth:`stop` joins them. The reason shows in the status."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = reason
            self.last_error = reason
        log.error("feed %s failed: %s", self.name, reason)
        self._stop.set()
        if self.rest is not None:
            self.rest.abort()
        for connection in self._connections:
            connection.stop()

    def _on_thread_error(self, error: ThreadError) -> None:
        """A feed thread's work raised (the supervisor logged the traceback): counted, in the
        status, and a ``thread_error`` quality event beside the data. The thread restarts;
        one that failed too often in a row gives up, and so does the feed."""
        with self._lock:
            self.thread_errors += 1
            self.last_thread_error = self.last_error = str(error)
            self._add_quality(None, "thread_error", error.detail())
        if error.action == "fail" and not self._stop.is_set():
            self.fail(str(error))

    def resume(self, symbol: str, last_recv_us: int, last_trade_id: int | None) -> None:
        """Before :meth:`start`: the file already holds ``symbol`` up to ``last_recv_us``. The
        time since is an outage: a ``recording_gap`` quality event says so, and where the
        venue pages numeric trade ids, the trades after ``last_trade_id`` are backfilled
        over REST by the same path as after a disconnect."""
        if self._started:
            raise UsageError(f"feed {self.name}: resume() must come before start()")
        now = self.clock.time_us()
        with self._lock:
            st = self._state(symbol)
            detail: dict[str, Any] = {
                "from_us": last_recv_us,
                "to_us": now,
                "seconds": round((now - last_recv_us) / 1e6, 3),
                "last_trade_id": last_trade_id,
            }
            self._add_quality(symbol, "recording_gap", detail)
            if last_trade_id is not None and self.venue.numeric_trade_ids:
                st.trades.start_after(last_trade_id)
                st.missing_since = self.clock.now()

    @property
    def running(self) -> bool:
        return self._started and not self._stopped and self.failure is None

    def threads_alive(self) -> list[str]:
        names = [c.thread_name for c in self._connections if c.alive]
        return names + ([self._maintainer.name] if self._maintainer.is_alive() else [])

    def book(self, symbol: str) -> OrderBook:
        """The live book object; read it under :meth:`locked` for a consistent view."""
        st = self._symbols.get(symbol)
        if st is None:
            raise UsageError(f"{self.name} does not record {symbol!r} (it has {self.symbols})")
        return st.book

    def recent_trades(self, symbol: str, after: int = 0) -> tuple[int, list[Trade]]:
        """Trades recorded for ``symbol`` since cursor ``after`` (at most the last
        ``TAPE_LENGTH``), oldest first, and the cursor to pass next time."""
        st = self._symbols.get(symbol)
        if st is None:
            raise UsageError(f"{self.name} does not record {symbol!r} (it has {self.symbols})")
        with self._lock:
            return st.tape.since(after)

    def locked(self) -> threading.Lock:
        return self._lock

    def _heartbeat_message(self, conn: int) -> Callable[[], str | None]:
        """The keep-alive of whichever protocol instance serves ``conn``'s current session."""
        return lambda: self._venues[conn].heartbeat_message()

    # -- ConnectionHandler ---------------------------------------------------------------
    def on_connected(self, conn: int) -> list[str]:
        with self._lock:
            # A fresh protocol per session: its per-connection state starts over.
            venue = self._venues[conn] = self.venue_cls(self.symbols)
            self._live.add(conn)
            for st in self._symbols.values():
                st.seq.connection_up(conn)
                st.acked.discard(conn)  # a new session must be acknowledged afresh
            if conn in self._connected_before:
                self.reconnects += 1
                self._add_quality(None, "reconnect", {"conn": conn})
            self._connected_before.add(conn)
        return venue.subscribe_messages()

    def on_disconnected(self, conn: int, reason: str, *, stale: bool) -> None:
        now = self.clock.now()
        with self._lock:
            self._live.discard(conn)
            self.last_error = reason
            if stale:
                self.stale += 1
                self._add_quality(None, "stale", {"conn": conn, "reason": reason})
            self._add_quality(None, "disconnect", {"conn": conn, "reason": reason})
            for st in self._symbols.values():
                st.acked.discard(conn)
                st.seq.connection_down(conn, now)
                if not self._live:
                    st.seq.reset()
                    st.book.invalidate()
                    st.generation += 1
                self._drain_notes(st)

    def on_oversized(self, conn: int, prefix: bytes, recv_ts: int) -> None:
        with self._lock:
            self.messages += 1
            limit = self._connections[0].max_message
            self._add_quarantine(
                recv_ts, f"message larger than the {limit}-byte limit", prefix, truncated=True
            )

    def on_messages(self, conn: int, payloads: list[bytes], recv_ts: int) -> None:
        now = self.clock.now()
        with self._lock:
            parse = self._venues[conn].parse
            # (checked per batch: once every symbol is in, the per-event test is skipped)
            data_acks = self.venue_cls.acknowledged_by_data and any(
                conn not in st.acked for st in self._symbols.values()
            )
            self.messages += len(payloads)
            self._last_message_at = now
            for payload in payloads:
                try:
                    for event in parse(payload, recv_ts):
                        if data_acks:
                            self._ack_by_data(conn, event)
                        if isinstance(event, BookDelta):
                            self._on_delta(conn, event, now)
                        elif isinstance(event, Trade):
                            self._on_trade(conn, event, now)
                        elif isinstance(event, Heartbeat):
                            self._on_heartbeat(conn, event, now)
                        elif isinstance(event, BookSnapshot):
                            self._on_snapshot(conn, event)
                        elif isinstance(event, Quote):
                            self._record_quote(event)
                        elif isinstance(event, SyncLost):
                            self._on_sync_lost(event)
                        elif isinstance(event, ReconnectRequest):
                            self._on_reconnect_request(conn, event)
                        elif isinstance(event, Subscribed):
                            self._on_subscribed(conn, event)
                        elif isinstance(event, SubscriptionRejected):
                            self._on_rejected(conn, event, payload)
                except ProtocolError as exc:
                    self._add_quarantine(recv_ts, str(exc), payload)
                except Exception as exc:  # a venue or feed bug must not kill the thread
                    self._add_quarantine(recv_ts, f"internal {type(exc).__name__}: {exc}", payload)
            if self._rec.published:
                self._rec.publish()

    # -- event handling (lock held) -------------------------------------------------------
    def _state(self, symbol: str) -> _Symbol:
        st = self._symbols.get(symbol)
        if st is None:
            raise ProtocolError(f"message for unsubscribed symbol {symbol!r}")
        return st

    def _on_delta(self, conn: int, event: BookDelta, now: float) -> None:
        st = self._state(event.symbol)
        if event.seq is None or not self.venue_cls.sequenced:
            self._apply_delta(st, event, conn)
            return
        seq = st.seq
        if self.redundant and seq.last is not None and event.seq <= seq.last:
            self._compare_twin(st, conn, event)
        self._apply_released(st, seq.on_message(conn, event.seq, event, now, event.prev_seq), conn)
        if seq.synced:
            st.book.seq = seq.last
        if seq.notes:
            self._drain_notes(st)
        self._last_lag_us = event.recv_ts - event.ts

    def _compare_twin(self, st: _Symbol, conn: int, event: BookDelta) -> None:
        """A redundant twin must say what the applied copy said; if not, one path is corrupt."""
        applied = st.applied.get(event.seq) if event.seq is not None else None
        if applied is not None and (applied.bids != event.bids or applied.asks != event.asks):
            self.mismatches += 1
            self._add_quality(st.name, "mismatch", {"conn": conn, "seq": event.seq})

    def _apply_released(self, st: _Symbol, ready: list[BookDelta | None], conn: int | None) -> None:
        """Apply what the sequencer released, in order, until a check fails: the rest goes
        back to the sequencer, so the next snapshot still finds what it does not contain."""
        for i, item in enumerate(ready):
            if item is None:
                continue
            if not st.book.valid:
                for later in ready[i:]:
                    if later is not None and later.seq is not None:
                        st.seq.hold(later.seq, later, later.prev_seq)
                return
            self._apply_delta(st, item, conn)

    def _apply_delta(self, st: _Symbol, d: BookDelta, conn: int | None) -> None:
        if self.redundant and d.seq is not None:
            applied = st.applied
            applied[d.seq] = d
            if len(applied) > TWIN_WINDOW:
                del applied[next(iter(applied))]
        book = st.book
        symbol = st.name
        exchange = self.exchange
        ingest_seq = self._next_ingest_seq()
        # The hot path appends inline (not through Recorder.book_row): one call fewer per level.
        for side, levels, setter in (("bid", d.bids, book.set_bid), ("ask", d.asks, book.set_ask)):
            for price, size in levels:
                setter(price, size)
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
        book.seq = d.seq
        book.ts = d.ts
        trimmed = self._trim(st, d.ts, d.recv_ts, d.seq, ingest_seq)
        if self._rec.published is not None and (d.bids or d.asks or trimmed):
            bids, asks = (
                (d.bids, d.asks) if trimmed is None else (d.bids + trimmed[0], d.asks + trimmed[1])
            )
            change = BookChange(exchange, symbol, d.ts, d.recv_ts, d.seq, False, bids, asks)
            self._rec.published.append(Applied(ingest_seq, "book", change))
        self._check(st, d.seq, d.checksum, conn)

    def _trim(
        self, st: _Symbol, ts: int, recv_ts: int, seq: int | None, ingest_seq: int
    ) -> tuple[list[Level], list[Level]] | None:
        """Cut the book to the venue's depth once a whole message is applied; the levels cut,
        recorded as deletions so replaying book_deltas gives this book (None: none cut)."""
        depth = self.venue_cls.book_depth
        if depth is None:
            return None
        bids, asks = st.book.truncate(depth)
        if not bids and not asks:
            return None
        for side, prices in (("bid", bids), ("ask", asks)):
            for price in prices:
                self._rec.book_row(st.name, ts, recv_ts, seq, "delta", side, price, 0.0, ingest_seq)
        return [(p, 0.0) for p in bids], [(p, 0.0) for p in asks]

    def _check(self, st: _Symbol, seq: int | None, checksum: int | None, conn: int | None) -> None:
        """The checks that run once a whole message is applied: checksum, crossing."""
        book = st.book
        if not book.valid:
            return  # out of sync already: a resync is on its way
        venue = self._venues.get(conn) if conn is not None else None
        if checksum is not None and venue is not None:
            ours = venue.checksum(st.name, book)
            if ours != checksum:
                self.checksums += 1
                detail = {"seq": seq, "expected": checksum, "computed": ours}
                self._lose_sync(st, "checksum", detail)
                return
        if book.crossed:
            if not self.venue_cls.crossed_is_desync:
                if not st.crossed:  # log the start of a crossed stretch, not every message
                    st.crossed = True
                    self.crossed += 1
                    self._add_quality(st.name, "crossed", {"seq": seq, **self._best(book)})
                return
            self.crossed += 1
            self._lose_sync(st, "crossed", {"seq": seq, **self._best(book)})
        else:
            st.crossed = False

    @staticmethod
    def _best(book: OrderBook) -> dict[str, Any]:
        return {"best_bid": book.best_bid_price, "best_ask": book.best_ask_price}

    def _lose_sync(self, st: _Symbol, kind: str, detail: dict[str, Any]) -> None:
        """A check failed: the book is invalid from here until a fresh snapshot is applied."""
        self._add_quality(st.name, kind, detail)
        st.book.invalidate()
        st.seq.invalidate(kind, detail.get("seq"))
        st.flagged = True
        st.resync_at = 0.0
        self._drain_notes(st)

    def _on_sync_lost(self, event: SyncLost) -> None:
        """The venue's own numbering says messages were lost: resync the affected books."""
        states = [self._state(event.symbol)] if event.symbol else list(self._symbols.values())
        for st in states:
            self.gaps += 1
            self._lose_sync(st, "gap", {"rule": event.rule, **event.detail})

    def _on_subscribed(self, conn: int, event: Subscribed) -> None:
        """The venue acknowledged ``event.symbols`` on ``conn``: the connection may now prove
        itself healthy (its backoff starts over only then), and a book that starts from a
        REST snapshot is fetched by the maintenance thread right away, diffs or not."""
        states = [self._symbols[s] for s in event.symbols if s in self._symbols]
        for st in states:
            if not st.acked_once:
                log.info("feed %s: %s subscribed", self.name, st.name)
            st.acked.add(conn)
            st.acked_once = True
            st.rejected = None
        if states:
            self._connections[conn - 1].mark_subscribed()

    def _ack_by_data(self, conn: int, event: MarketEvent) -> None:
        """For a venue that acknowledges nothing: a symbol's first market data on ``conn``."""
        if isinstance(event, Trade | BookSnapshot | BookDelta | Quote):
            st = self._symbols.get(event.symbol)
            if st is not None and conn not in st.acked:
                self._on_subscribed(conn, Subscribed(self.exchange, [st.name], event.recv_ts))

    def _on_rejected(self, conn: int, event: SubscriptionRejected, payload: bytes) -> None:
        """A refusal of the symbols it names, or (naming none of ours) of every symbol still
        waiting for its acknowledgement on ``conn``. Loud: the status and ``workbench
        record`` say it; the reply itself is kept in quarantine."""
        states = [self._symbols[s] for s in event.symbols if s in self._symbols] or [
            st for st in self._symbols.values() if conn not in st.acked
        ]
        for st in states:
            st.rejected = event.reason
        names = ", ".join(st.name for st in states)
        self.last_error = f"subscription rejected{f' ({names})' if names else ''}: {event.reason}"
        log.info("feed %s: %s", self.name, self.last_error)
        self._add_quarantine(event.recv_ts, event.reason, payload)

    def _on_reconnect_request(self, conn: int, event: ReconnectRequest) -> None:
        self._connections[conn - 1].drop(f"venue asked to reconnect: {event.reason}")

    def _on_trade(self, conn: int, event: Trade, now: float) -> None:
        st = self._state(event.symbol)
        if event.seq is not None:
            seq = st.seq
            self._apply_released(st, seq.on_message(conn, event.seq, None, now), conn)
            if seq.synced:
                st.book.seq = seq.last  # the book is current up to this trade too
            if seq.notes:
                self._drain_notes(st)
        self._record_trade(st, event)
        self._last_lag_us = event.recv_ts - event.ts
        if st.trades.missing and st.missing_since is None:
            st.missing_since = now

    def _record_trade(self, st: _Symbol, t: Trade) -> bool:
        tracker = st.trades
        new = (
            tracker.add(int(t.trade_id))
            if self.venue.numeric_trade_ids
            else (tracker.add_text(t.trade_id))
        )
        if new:
            self._rec.trade(t)
            self.trade_count += 1
            st.tape.append(t)
        return new

    def _on_heartbeat(self, conn: int, event: Heartbeat, now: float) -> None:
        for symbol, seq in event.seqs.items():
            st = self._symbols.get(symbol)
            if st is not None:
                st.seq.on_heartbeat(conn, seq, now)
                if st.seq.notes:
                    self._drain_notes(st)

    def _on_snapshot(self, conn: int | None, snap: BookSnapshot) -> None:
        """An in-band snapshot is the venue saying "this is the book": applied, except the
        opening snapshot of a redundant twin while the book is in sync (it would rewind it)."""
        st = self._state(snap.symbol)
        seq = st.seq
        if seq.synced and conn is not None and seq.position(conn) is None:
            if snap.seq is not None:
                seq.note_position(conn, snap.seq)
            return
        self._apply_snapshot(st, snap, conn)

    def _apply_snapshot(self, st: _Symbol, snap: BookSnapshot, conn: int | None) -> None:
        book = st.book
        was_out_of_sync = st.synced_once and not book.valid
        book.apply_snapshot(snap.bids, snap.asks, seq=snap.seq, ts=snap.ts)
        # A reset and the levels in the delta stream: the deltas alone rebuild every book.
        ingest_seq = self._next_ingest_seq()
        row = self._rec.book_row
        row(st.name, snap.ts, snap.recv_ts, snap.seq, "reset", None, None, None, ingest_seq)
        for side, levels in (("bid", snap.bids), ("ask", snap.asks)):
            for price, size in levels:
                if size > 0:
                    row(
                        st.name,
                        snap.ts,
                        snap.recv_ts,
                        snap.seq,
                        "snapshot",
                        side,
                        price,
                        size,
                        ingest_seq,
                    )
        st.flagged = False
        st.crossed = False
        trimmed = self._trim(st, snap.ts, snap.recv_ts, snap.seq, ingest_seq)
        if self._rec.published is not None:
            bids = [lv for lv in snap.bids if lv[1] > 0]
            asks = [lv for lv in snap.asks if lv[1] > 0]
            if trimmed is not None:
                bids += trimmed[0]
                asks += trimmed[1]
            change = BookChange(
                self.exchange, st.name, snap.ts, snap.recv_ts, snap.seq, True, bids, asks
            )
            self._rec.published.append(Applied(ingest_seq, "book", change))
        self._check(st, snap.seq, snap.checksum, conn)
        if not book.valid:
            return  # the snapshot itself failed a check: another resync is under way
        if snap.last_trade_id is not None and self.venue.numeric_trade_ids:
            last_id = int(snap.last_trade_id)
            if st.trades.watermark is None:
                st.trades.start_after(last_id)
            else:
                st.trades.exists_through(last_id)
        source = "in-band" if conn is not None else "rest"
        if not st.synced_once:
            st.synced_once = True
            detail: dict[str, Any] = {"snapshot_seq": snap.seq, "source": source, "initial": True}
            if snap.last_trade_id is not None:
                detail["last_trade_id"] = snap.last_trade_id
            self._add_quality(st.name, "resync", detail)
        else:
            if st.missing_since is None:
                # Trades may have passed while the book was out of sync: let backfill look.
                st.missing_since = self.clock.now()
            if was_out_of_sync and (snap.seq is None or not self.venue_cls.sequenced):
                # (numbered snapshots hear this from the sequencer, with the seq window)
                self.resyncs += 1
                self._add_quality(st.name, "resync", {"source": source})
        if snap.seq is not None and self.venue_cls.sequenced:
            self._apply_released(
                st, st.seq.snapshot_applied(conn, snap.seq, self.clock.now()), conn
            )
            if st.seq.synced:
                book.seq = st.seq.last
        self._drain_notes(st, source=source)
        st.resync_attempt = 0

    def _drain_notes(self, st: _Symbol, source: str | None = None) -> None:
        for note in st.seq.notes:
            kind, detail = note.kind, note.detail
            if kind == "gap":
                self.gaps += 1
                st.book.invalidate()
                detail = {**detail, "scope": "feed", "rule": self.venue_cls.seq_rule}
                st.missing_since = st.missing_since or self.clock.now()
            elif kind == "conn_gap":
                if not self.redundant:
                    continue  # with one connection the feed-level gap says the same
                kind, detail = "gap", {**detail, "scope": "connection"}
            elif kind == "duplicate":
                self.duplicates += 1
            elif kind == "resync":
                self.resyncs += 1
                if source is not None:
                    detail = {**detail, "source": source}
            elif kind == "invalid":
                continue  # the caller already logged the specific check that failed
            elif kind == "buffer_overflow":
                kind = "gap"
            self._add_quality(st.name, kind, detail)
        st.seq.notes.clear()

    def _add_quality(self, symbol: str | None, kind: str, detail: dict[str, Any]) -> None:
        self._rec.quality(symbol, kind, detail)

    def _add_quarantine(
        self, recv_ts: int, reason: str, raw: bytes, *, truncated: bool = False
    ) -> None:
        """Keep a bad message with the reason; ``truncated``: only its first bytes are known."""
        self.quarantined += 1
        self._rec.quarantine(recv_ts, reason, raw, truncated=truncated)

    # -- maintenance thread ---------------------------------------------------------------
    def _maintain(self) -> None:
        next_snapshot = self.clock.now() + self.snapshot_interval
        next_poll = self.clock.now()
        while not self.clock.wait(self._stop, MAINTENANCE_INTERVAL):
            now = self.clock.now()
            resync: list[tuple[_Symbol, int]] = []
            backfill: list[_Symbol] = []
            with self._lock:
                for st in self._symbols.values():
                    st.seq.tick(now)
                    if st.seq.notes:
                        self._drain_notes(st)
                    if now >= st.resync_at and (
                        st.wants_resync
                        or (
                            not self.venue_cls.snapshot_in_band
                            and not st.seq.synced
                            # a diff to match, or an acknowledged stream: a quiet pair
                            # must not wait for its first diff to get a book
                            and (st.seq.buffered or (st.acked and not st.book.valid))
                        )
                    ):
                        resync.append((st, st.generation))
                    if (
                        self.backfill
                        and st.missing_since is not None
                        and now - st.missing_since >= self.backfill_delay
                        and now >= st.backfill_after
                    ):
                        backfill.append(st)
                if now >= next_snapshot:
                    self._write_snapshots(self.clock.time_us())
                    next_snapshot = now + self.snapshot_interval
                self._update_rate(now)
                self._flush_locked()
            fault = self._rec.sink_error or self.sink.fault
            if fault is not None:
                self.fail(fault)  # recording on would only pile up rows that cannot be stored
                break
            if self.poll_interval is not None and now >= next_poll:
                next_poll = now + self.poll_interval
                for st in self._symbols.values():
                    self._poll(st)
                continue
            for st, generation in resync:
                if self.rest is None or self.venue.snapshot_path(st.name) is None:
                    self._resubscribe(st)
                    continue
                snap = self._fetch_snapshot(st)
                if snap is not None:
                    with self._lock:
                        current = st.generation == generation  # else: a new stream began
                        if current and (st.wants_resync or not st.seq.synced):
                            self._apply_snapshot(st, snap, None)
            for st in backfill:
                self._backfill(st)

    def _poll(self, st: _Symbol) -> None:
        """Polling mode: every round fetches the ticker and/or replaces the book from REST,
        then fetches new trades."""
        venue = self.venue
        quote: Quote | None = None
        snap: BookSnapshot | None = None
        ticker_path = venue.ticker_path(st.name)
        if ticker_path is not None:
            quote = self._rest_get(ticker_path, st.name, venue.parse_ticker, "REST ticker")
        if venue.snapshot_path(st.name) is not None:
            snap = self._fetch_snapshot(st)
        failed = (ticker_path is not None and quote is None) or (
            venue.snapshot_path(st.name) is not None and snap is None
        )
        with self._lock:
            if failed:
                st.acked.discard(0)
                if self._live:
                    self._live.clear()
                    self._add_quality(None, "disconnect", {"reason": self.last_error})
                return
            if not self._live and self._polled_once:
                self.reconnects += 1
                self._add_quality(None, "reconnect", {})
            self._polled_once = True
            self._live.add(0)
            st.acked.add(0)  # polling: an answered poll is the acknowledgement
            st.acked_once = True
            self.messages += 1
            self._last_message_at = self.clock.now()
            if quote is not None:
                seen = (quote.ts, quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size)
                if seen != st.last_quote:  # an unchanged ticker is no news
                    st.last_quote = seen
                    self._record_quote(quote)
            if snap is not None:
                self._apply_snapshot(st, snap, None)
        self._backfill(st)

    def _resubscribe(self, st: _Symbol) -> None:
        """No REST snapshot: ask the venue for a fresh in-band book on the live connections
        or, where it cannot resend one symbol's book, reconnect."""
        now = self.clock.now()
        with self._lock:
            st.seq.reset()  # buffer until the fresh snapshot arrives
            live = [c for c in self._connections if c.conn in self._live]
            requests = [(c, self._venues[c.conn].resubscribe_messages(st.name)) for c in live]
            if live and all(messages is not None for _, messages in requests):
                for connection, messages in requests:
                    connection.send(messages or [])
                st.resync_at = now + RESUBSCRIBE_TIMEOUT
                return
            st.resync_at = now + RECONNECT_TIMEOUT
        for connection in self._connections:
            connection.drop(f"reconnecting to resync {st.name}")

    def _fetch_snapshot(self, st: _Symbol) -> BookSnapshot | None:
        path = self.venue.snapshot_path(st.name)
        if path is None:
            return None  # polling a venue without a REST book: trades only
        snap = self._rest_get(path, st.name, self.venue.parse_snapshot, "REST snapshot")
        if snap is None:
            self._retry_later(st)
        return snap

    def _rest_get(
        self, path: str, symbol: str, parse: Callable[[bytes, str, int], T], what: str
    ) -> T | None:
        """GET and parse; a failure is noted (bad bodies quarantined) and gives None."""
        assert self.rest is not None
        try:
            body = self.rest.get(path)
        except FeedError as exc:
            with self._lock:
                self.last_error = str(exc)
            return None
        recv_ts = self.clock.time_us()
        try:
            return parse(body, symbol, recv_ts)
        except ProtocolError as exc:
            with self._lock:
                self.last_error = f"{what}: {exc}"
                self._add_quarantine(recv_ts, self.last_error, body)
            return None

    def _retry_later(self, st: _Symbol) -> None:
        with self._lock:
            st.resync_attempt += 1
            st.resync_at = self.clock.now() + min(5.0, 0.1 * 2**st.resync_attempt)

    def _backfill(self, st: _Symbol) -> None:
        assert self.rest is not None
        after = st.trades.watermark
        if after is None:
            with self._lock:
                st.missing_since = None
            return
        first, added = after, 0
        while not self._stop.is_set():
            path = self.venue.trades_path(st.name, after)
            if path is None:
                break
            trades = self._rest_get(path, st.name, self.venue.parse_trades, "REST trades")
            if trades is None:
                with self._lock:
                    st.backfill_after = self.clock.now() + 1.0
                return
            with self._lock:
                for t in trades:
                    if self._record_trade(st, t):
                        added += 1
            newest = max((int(t.trade_id) for t in trades), default=after)
            if len(trades) < self.venue.trades_page_size or newest <= after:
                break  # the last page, or one that did not move past the cursor
            after = newest
        with self._lock:
            self.backfilled += added
            if added:
                self._add_quality(
                    st.name,
                    "backfill",
                    {"after_id": first, "count": added, "watermark": st.trades.watermark},
                )
            st.missing_since = self.clock.now() if st.trades.missing else None
            st.backfill_after = self.clock.now() + self.backfill_delay

    # -- rows out (lock held) ---------------------------------------------------------------
    def _record_quote(self, q: Quote) -> None:
        self._state(q.symbol)
        self._rec.quote(q)
        self.quote_count += 1
        self._last_lag_us = q.recv_ts - q.ts

    def _add_instruments(self) -> None:
        """Each venue symbol with its normalized ``BASE-QUOTE`` pair, for joins across venues."""
        for name in self.symbols:
            base: str | None
            quote: str | None
            try:
                base, quote = self.venue.pair(name)
            except ValueError:
                base = quote = None
            self._rec.instrument(name, base, quote)

    def _write_snapshots(self, recv_ts: int) -> None:
        for st in self._symbols.values():
            if st.synced_once:
                book = st.book
                bids, asks = book.top(self.depth)
                self._rec.top(st.name, book.ts, recv_ts, book.seq, book.valid, bids, asks)

    def _flush_locked(self) -> None:
        self._rec.flush()

    def _update_rate(self, now: float) -> None:
        mark_time, mark_count = self._rate_mark
        if now - mark_time >= 1.0:
            self._rate = (self.messages - mark_count) / (now - mark_time)
            self._rate_mark = (now, self.messages)

    # -- status ---------------------------------------------------------------------------
    def status(self) -> FeedStatus:
        now = self.clock.now()
        with self._lock:
            connection_error = self._connection_error()
            age = None if self._last_message_at is None else now - self._last_message_at
            lag = None if self._last_lag_us is None else self._last_lag_us / 1000
            return FeedStatus(
                name=self.name,
                exchange=self.exchange,
                symbols=list(self.symbols),
                running=self.running,
                connections=len(self._live),
                messages=self.messages,
                msgs_per_sec=self._rate,
                last_message_age=age,
                lag_ms=lag,
                trades=self.trade_count,
                quotes=self.quote_count,
                reconnects=self.reconnects,
                gaps=self.gaps,
                resyncs=self.resyncs,
                duplicates=self.duplicates,
                crossed=self.crossed,
                checksums=self.checksums,
                mismatches=self.mismatches,
                stale=self.stale,
                backfilled=self.backfilled,
                quarantined=self.quarantined,
                thread_errors=self.thread_errors,
                last_thread_error=self.last_thread_error,
                lingering_threads=list(self.lingering),
                book_valid={s: st.book.valid for s, st in self._symbols.items()}
                if self.venue_cls.has_book
                else {},
                last_error=self._last_error(connection_error),
                failed=self.failure,
                connection_error=connection_error,
                subscribed={s: bool(st.acked) for s, st in self._symbols.items()},
                subscribed_once=[s for s, st in self._symbols.items() if st.acked_once],
                rejected={s: st.rejected for s, st in self._symbols.items() if st.rejected},
                subscribers=[sub.status() for sub in self._rec.subscribers],
            )

    def _connection_error(self) -> str | None:
        """What ended the latest connection attempt or session that has not been followed
        by an acknowledged subscription (polling: the failed poll while none answers)."""
        if self.poll_interval is not None:
            return None if self._live else self.last_error
        return next((c.last_error for c in self._connections if c.last_error), None)

    def _last_error(self, connection_error: str | None) -> str | None:
        """The newest problem: with no connection up, the reason there is none."""
        if connection_error is not None and not self._live:
            return connection_error
        return self.last_error or connection_error
