"""A live feed: venue protocol + connections + books + recording, for one venue and its symbols.

The feed is the shell that builds and runs the parts (see docs/architecture.md, "Threads"):

- :mod:`workbench.feeds.state` — what the threads share under the feed's one lock: each
  symbol's pure sync machine (:class:`~workbench.core.sync.BookSync`), the recorder, the
  counters;
- :mod:`workbench.feeds.stream` — each connection thread receives, parses and hands events to
  the sync machines, whose applied changes the recorder turns into rows and subscriber events;
- :mod:`workbench.feeds.worker` — one maintenance thread hands the rows to the store's writer
  every 50 ms, writes top-N book snapshots every second, and executes the machines' actions
  (REST snapshots, resubscribes, REST trade backfill) outside the lock, so receiving never
  waits on HTTP.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from workbench.clock import WALL
from workbench.core.book import OrderBook
from workbench.core.clock import Clock
from workbench.core.sync import SyncRules
from workbench.errors import FeedError, UsageError
from workbench.events import Trade
from workbench.feeds.connection import Backoff, Connection
from workbench.feeds.recorder import RowSink
from workbench.feeds.rest import RestClient
from workbench.feeds.state import FeedState, SymbolState
from workbench.feeds.status import FeedStatus
from workbench.feeds.stream import Stream
from workbench.feeds.subscription import QUEUE_SIZE, Subscription, Target
from workbench.feeds.worker import Worker
from workbench.threads import SupervisedThread, ThreadError, join_all
from workbench.venues import VenueProtocol, get_venue

log = logging.getLogger(__name__)

STORED_DEPTH = 20
"""Levels per side stored in ``book_snapshots`` when no depth is chosen."""


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
        self.redundant = redundant

        conns = range(1, 3 if redundant else 2) if poll_interval is None else range(0)
        self.venue = venue_cls(self.symbols)  # for REST; each connection gets its own
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
        self.state = FeedState(self.name, self.venue, self.symbols, rules, sink, clock, conns)
        self.stream = Stream(self.state)
        """The connections' handler: what they receive goes through it."""
        self._lock = self.state.lock
        self._stop = threading.Event()
        self._connections = [
            Connection(
                conn,
                self.ws_url,
                self.stream,
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
        self.stream.connections = self._connections
        worker = Worker(
            self.state,
            rest=self.rest,
            connections=self._connections,
            sink=sink,
            stop=self._stop,
            fail=self.fail,
            snapshot_interval=snapshot_interval,
            depth=self.depth,
            poll_interval=poll_interval,
            backfill=self.backfill,
        )
        # The worker keeps all its state on the feed: after a bug it is restarted.
        self._maintainer = SupervisedThread(
            worker.run,
            name=f"wb-{self.name}-maint",
            restart=True,
            on_error=self._on_thread_error,
            stop=self._stop,
        )
        self._started = False
        self._stopped = False
        self.thread_errors = 0
        self.last_thread_error: str | None = None
        self.lingering: list[str] = []
        """Threads of this feed still alive after :meth:`stop` gave up waiting for them."""
        self.failure: str | None = None
        """Set by :meth:`fail`: why the feed stopped itself."""

    @property
    def messages(self) -> int:
        """Messages received so far (polling: answered polls)."""
        return self.state.messages

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
            self.state.live.clear()
            self.state.write_snapshots(self.depth)
            self.state.rec.flush()
            subscribers = list(self.state.rec.subscribers)
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
        unknown = [s for s in symbols or () if s not in self.state.symbols]
        if unknown:
            raise UsageError(f"{self.name} does not record {unknown} (it has {self.symbols})")
        rec = self.state.rec
        with self._lock:
            label = name or f"{self.name}#{len(rec.subscribers) + 1}"
            return rec.subscribe(
                target, name=label, kinds=kinds, symbols=symbols, maxsize=maxsize,
                on_close=self._forget,
            )  # fmt: skip

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            self.state.rec.forget(subscription)

    def fail(self, reason: str) -> None:
        """Give up: the feed cannot do its job (its rows cannot be stored, a thread it needs
        died). Safe from any thread, the feed's own included: it asks every thread to end
        and returns at once; :meth:`stop` joins them. The reason shows in the status."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = reason
            self.state.last_error = reason
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
            self.last_thread_error = self.state.last_error = str(error)
            self.state.quality(None, "thread_error", error.detail())
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
            st = self.state.state(symbol)
            detail: dict[str, Any] = {
                "from_us": last_recv_us,
                "to_us": now,
                "seconds": round((now - last_recv_us) / 1e6, 3),
                "last_trade_id": last_trade_id,
            }
            self.state.quality(symbol, "recording_gap", detail)
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
        return self._symbol(symbol).book

    def recent_trades(self, symbol: str, after: int = 0) -> tuple[int, list[Trade]]:
        """Trades recorded for ``symbol`` since cursor ``after`` (at most the last
        ``TAPE_LENGTH``), oldest first, and the cursor to pass next time."""
        st = self._symbol(symbol)
        with self._lock:
            return st.tape.since(after)

    def locked(self) -> threading.Lock:
        return self._lock

    def _symbol(self, symbol: str) -> SymbolState:
        st = self.state.symbols.get(symbol)
        if st is None:
            raise UsageError(f"{self.name} does not record {symbol!r} (it has {self.symbols})")
        return st

    def _heartbeat_message(self, conn: int) -> Callable[[], str | None]:
        """The keep-alive of whichever protocol instance serves ``conn``'s current session."""
        return lambda: self.state.venues[conn].heartbeat_message()

    def _add_instruments(self) -> None:
        """Each venue symbol with its normalized ``BASE-QUOTE`` pair, for joins across venues."""
        for name in self.symbols:
            base: str | None
            quote: str | None
            try:
                base, quote = self.venue.pair(name)
            except ValueError:
                base = quote = None
            self.state.rec.instrument(name, base, quote)

    # -- status ---------------------------------------------------------------------------
    def status(self) -> FeedStatus:
        state = self.state
        now = self.clock.now()
        with self._lock:
            syncs = [st.sync for st in state.symbols.values()]
            connection_error = self._connection_error()
            age = None if state.last_message_at is None else now - state.last_message_at
            lag = None if state.last_lag_us is None else state.last_lag_us / 1000
            return FeedStatus(
                name=self.name,
                exchange=self.exchange,
                symbols=list(self.symbols),
                running=self.running,
                connections=len(state.live),
                messages=state.messages,
                msgs_per_sec=state.rate,
                last_message_age=age,
                lag_ms=lag,
                trades=state.trades,
                quotes=state.quotes,
                reconnects=state.reconnects,
                gaps=sum(s.gaps for s in syncs),
                resyncs=sum(s.resyncs for s in syncs),
                duplicates=sum(s.duplicates for s in syncs),
                crossed=sum(s.crossings for s in syncs),
                checksums=sum(s.checksum_failures for s in syncs),
                mismatches=sum(s.mismatches for s in syncs),
                stale=state.stale,
                backfilled=state.backfilled,
                quarantined=state.quarantined,
                held_back=state.held_back,
                thread_errors=self.thread_errors,
                last_thread_error=self.last_thread_error,
                lingering_threads=list(self.lingering),
                book_valid={s: st.book.valid for s, st in state.symbols.items()}
                if self.venue_cls.has_book
                else {},
                last_error=self._last_error(connection_error),
                failed=self.failure,
                connection_error=connection_error,
                subscribed={s: bool(st.acked) for s, st in state.symbols.items()},
                subscribed_once=[s for s, st in state.symbols.items() if st.acked_once],
                rejected={s: st.rejected for s, st in state.symbols.items() if st.rejected},
                subscribers=[sub.status() for sub in state.rec.subscribers],
            )

    def _connection_error(self) -> str | None:
        """What ended the latest connection attempt or session that has not been followed
        by an acknowledged subscription (polling: the failed poll while none answers)."""
        if self.poll_interval is not None:
            return None if self.state.live else self.state.last_error
        return next((c.last_error for c in self._connections if c.last_error), None)

    def _last_error(self, connection_error: str | None) -> str | None:
        """The newest problem: with no connection up, the reason there is none."""
        if connection_error is not None and not self.state.live:
            return connection_error
        return self.state.last_error or connection_error
