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
from workbench.core.sync import Action, BookSync, FetchSnapshot, Resubscribe, SyncRules
from workbench.errors import FeedError, ProtocolError, UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
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

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 0.05
RESUBSCRIBE_TIMEOUT = 3.0
"""Seconds to wait for the fresh book a resubscribe asked for before asking again."""
RECONNECT_TIMEOUT = 5.0
"""Same, when the resync reconnected instead (the reconnect itself may back off)."""
STORED_DEPTH = 20
"""Levels per side stored in ``book_snapshots`` when no depth is chosen."""


T = TypeVar("T")


class _Symbol:
    """What the feed tracks for one symbol beside its :class:`BookSync`: the subscription's
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
        rules = SyncRules(
            sequenced=venue_cls.sequenced,
            seq_rule=venue_cls.seq_rule,
            book_depth=venue_cls.book_depth,
            crossed_is_desync=venue_cls.crossed_is_desync,
            snapshot_in_band=venue_cls.snapshot_in_band,
            numeric_trade_ids=self.venue.numeric_trade_ids,
            redundant=redundant,
            gap_timeout=gap_timeout,
            backfill=self.backfill,
            backfill_delay=backfill_delay,
        )
        self._rec = Recorder(self.exchange, sink, clock)
        self._symbols = {
            s: _Symbol(BookSync(s, rules, self._rec, self._checksum)) for s in self.symbols
        }
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

        # counters (written under the lock, read without it for status)
        self.messages = 0
        self.trade_count = 0
        self.quote_count = 0
        self.reconnects = 0
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
                st.sync.resume_after(last_trade_id, self.clock.now())

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
                st.sync.connection_up(conn)
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
                st.sync.connection_down(conn, now, last=not self._live)

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
                            self._state(event.symbol).sync.on_snapshot(conn, event, now)
                        elif isinstance(event, Quote):
                            self._record_quote(event)
                        elif isinstance(event, SyncLost):
                            self._on_sync_lost(event, now)
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
        self._state(event.symbol).sync.on_delta(conn, event, now)
        self._last_lag_us = event.recv_ts - event.ts

    def _checksum(self, conn: int, symbol: str, book: OrderBook) -> int | None:
        venue = self._venues.get(conn)
        return None if venue is None else venue.checksum(symbol, book)

    def _on_sync_lost(self, event: SyncLost, now: float) -> None:
        """The venue's own numbering says messages were lost: resync the affected books."""
        states = [self._state(event.symbol)] if event.symbol else list(self._symbols.values())
        for st in states:
            st.sync.sync_lost(event.rule, event.detail, now)

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
        if st.sync.on_trade(conn, event, now):
            self._record_trade(st, event)
        self._last_lag_us = event.recv_ts - event.ts

    def _record_trade(self, st: _Symbol, t: Trade) -> None:
        self._rec.trade(t)
        self.trade_count += 1
        st.tape.append(t)

    def _on_heartbeat(self, conn: int, event: Heartbeat, now: float) -> None:
        for symbol, seq in event.seqs.items():
            st = self._symbols.get(symbol)
            if st is not None:
                st.sync.on_heartbeat(conn, seq, now)

    def _add_quality(self, symbol: str | None, kind: str, detail: dict[str, Any]) -> None:
        self._rec.quality(symbol, kind, detail)

    def _add_quarantine(
        self, recv_ts: int, reason: str, raw: bytes, *, truncated: bool = False
    ) -> None:
        """Keep a bad message with the reason; ``truncated``: only its first bytes are known."""
        self.quarantined += 1
        self._rec.quarantine(recv_ts, reason, raw, truncated=truncated)

    # -- maintenance thread: executes what the books ask for ---------------------------------
    def _maintain(self) -> None:
        next_snapshot = self.clock.now() + self.snapshot_interval
        next_poll = self.clock.now()
        while not self.clock.wait(self._stop, MAINTENANCE_INTERVAL):
            now = self.clock.now()
            actions: list[tuple[_Symbol, Action]] = []
            with self._lock:
                for st in self._symbols.values():
                    rest_book = (
                        self.rest is not None and self.venue.snapshot_path(st.name) is not None
                    )
                    for action in st.sync.due(now, acked=bool(st.acked), rest_book=rest_book):
                        actions.append((st, action))
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
            for st, action in actions:
                if isinstance(action, FetchSnapshot):
                    snap = self._fetch_snapshot(st)
                    if snap is not None:
                        with self._lock:
                            if st.sync.wants_snapshot(action.generation):  # else: a new stream
                                st.sync.apply_snapshot(snap, None, self.clock.now())
                elif isinstance(action, Resubscribe):
                    self._resubscribe(st)
                else:
                    self._backfill(st, action.after)

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
                st.sync.apply_snapshot(snap, None, self.clock.now())
            after = st.sync.trades.watermark
        if self.backfill and after is not None:
            self._backfill(st, after)

    def _resubscribe(self, st: _Symbol) -> None:
        """No REST snapshot: ask the venue for a fresh in-band book on the live connections
        or, where it cannot resend one symbol's book, reconnect."""
        now = self.clock.now()
        with self._lock:
            live = [c for c in self._connections if c.conn in self._live]
            requests = [(c, self._venues[c.conn].resubscribe_messages(st.name)) for c in live]
            if live and all(messages is not None for _, messages in requests):
                st.sync.resubscribing(until=now + RESUBSCRIBE_TIMEOUT)
                for connection, messages in requests:
                    connection.send(messages or [])
                return
            st.sync.resubscribing(until=now + RECONNECT_TIMEOUT)
        for connection in self._connections:
            connection.drop(f"reconnecting to resync {st.name}")

    def _fetch_snapshot(self, st: _Symbol) -> BookSnapshot | None:
        path = self.venue.snapshot_path(st.name)
        if path is None:
            return None  # polling a venue without a REST book: trades only
        snap = self._rest_get(path, st.name, self.venue.parse_snapshot, "REST snapshot")
        if snap is None:
            with self._lock:
                st.sync.snapshot_failed(self.clock.now())
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

    def _backfill(self, st: _Symbol, after: int) -> None:
        """Page through the trades after id ``after`` over REST; each new one is recorded."""
        assert self.rest is not None
        first, added = after, 0
        while not self._stop.is_set():
            path = self.venue.trades_path(st.name, after)
            if path is None:
                break
            trades = self._rest_get(path, st.name, self.venue.parse_trades, "REST trades")
            if trades is None:
                with self._lock:
                    st.sync.backfill_failed(self.clock.now())
                return
            with self._lock:
                for t in trades:
                    if st.sync.add_trade(t):
                        self._record_trade(st, t)
                        added += 1
            newest = max((int(t.trade_id) for t in trades), default=after)
            if len(trades) < self.venue.trades_page_size or newest <= after:
                break  # the last page, or one that did not move past the cursor
            after = newest
        with self._lock:
            self.backfilled += added
            st.sync.backfill_done(self.clock.now(), first, added)

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
            if st.sync.synced_once:
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
            syncs = list(self._symbols.values())
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
                gaps=sum(st.sync.gaps for st in syncs),
                resyncs=sum(st.sync.resyncs for st in syncs),
                duplicates=sum(st.sync.duplicates for st in syncs),
                crossed=sum(st.sync.crossings for st in syncs),
                checksums=sum(st.sync.checksum_failures for st in syncs),
                mismatches=sum(st.sync.mismatches for st in syncs),
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
