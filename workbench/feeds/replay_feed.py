"""A recording played back as a feed: the same books, trade tape, rows and subscribers as live.

``%wb feed start replay:data/session.duckdb --speed 20`` and ``workbench replay DB --into OUT``
build a :class:`ReplayFeed`. One thread reads the recording with
:func:`workbench.replay.replay` (Arrow windows, events in the order they were applied live)
and applies each event under the feed's lock: book changes to the books, trades to the tape,
and every event through a :class:`~workbench.feeds.recorder.Recorder` into the sink (new
``ingest_seq`` ordinals of the target file, in the same order; the recorded timestamps kept)
and to the subscribers. Widgets and subscribers cannot tell it from a live feed.

Pacing: with ``speed`` the events keep their recorded spacing (by ``recv_ts``; quality
incidents by ``ts``) divided by ``speed``, timed on the feed's :class:`~workbench.core.clock.Clock`;
without it they go as fast as they can be applied. Nothing is re-sequenced or re-checked: the
recording holds what the live feed applied, and that is what is replayed.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from workbench.clock import WALL
from workbench.core.book import OrderBook
from workbench.core.clock import Clock
from workbench.errors import UsageError
from workbench.events import Applied, BookChange, BookTop, Quote, Trade
from workbench.feeds.recorder import Recorder, RowSink
from workbench.feeds.status import FeedStatus
from workbench.feeds.subscription import QUEUE_SIZE, Subscription, Target
from workbench.feeds.tape import TradeTape
from workbench.replay import TimeLike, apply_change, recorded_markets, replay
from workbench.threads import SupervisedThread, ThreadError, join_all

log = logging.getLogger(__name__)

SCHEME = "replay:"
"""The venue prefix that names a recording: ``replay:PATH``."""
BATCH = 4096
"""Events applied per lock hold at full speed: subscribers and widgets get a look in between."""
FLUSH_INTERVAL = 0.05
"""Clock seconds between hand-overs of the rows to the sink while pacing."""


class ReplayFeed:
    """Plays recording ``path`` (one exchange; ``symbols`` default all it holds) into
    ``sink`` until the recording ends or :meth:`stop`."""

    def __init__(
        self,
        path: str | Path,
        sink: RowSink,
        *,
        speed: float | None = None,
        exchange: str | None = None,
        symbols: Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        name: str | None = None,
        clock: Clock = WALL,
    ) -> None:
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise UsageError(f"speed must be a positive number (2 = twice as fast), got {speed}")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise UsageError(f"no recording at {self.path}")
        markets = recorded_markets(self.path)
        exchanges = sorted({e for e, _ in markets})
        if exchange is None:
            if len(exchanges) != 1:
                raise UsageError(
                    f"{self.path} holds {', '.join(exchanges) or 'no market data'}: "
                    "name the exchange to replay"
                )
            exchange = exchanges[0]
        held = sorted(s for e, s in markets if e == exchange)
        if not held:
            raise UsageError(f"{self.path} holds no {exchange} data (it has {exchanges})")
        unknown = [s for s in symbols or () if s not in held]
        if unknown:
            raise UsageError(f"{self.path} holds no {exchange} {unknown} (it has {held})")
        self.exchange = exchange
        self.symbols = list(dict.fromkeys(symbols or held))
        self.speed = speed
        self.name = name or f"replay:{self.path.name}"
        self.sink = sink
        self.clock = clock
        self._window = (start, end)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rec = Recorder(exchange, sink, clock)
        self._books = {s: OrderBook() for s in self.symbols}
        self._tapes = {s: TradeTape() for s in self.symbols}
        self._thread = SupervisedThread(
            self._play, name=f"wb-{self.name}", restart=False, on_error=self._crashed,
            stop=self._stop,
        )  # fmt: skip
        self._started = False
        self._stopped = False
        self.finished = threading.Event()
        """Set once every event of the recording was applied and handed to the sink."""
        self.events = 0
        self.trade_count = 0
        self.quote_count = 0
        self.failure: str | None = None
        self.lingering: list[str] = []
        self._last_at: float | None = None
        self._rate = 0.0
        self._rate_mark = (clock.now(), 0)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> ReplayFeed:
        if self._started:
            raise UsageError(f"feed {self.name} was already started")
        self._started = True
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """End the playback and hand every row applied so far to the sink."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        self._stop.set()
        lingering = join_all([self._thread], timeout, owner=f"feed {self.name}")
        with self._lock:
            self.lingering = lingering
            self._rec.flush()
            subscribers = list(self._rec.subscribers)
        for subscription in subscribers:
            subscription.close(timeout)

    @property
    def running(self) -> bool:
        return self._started and not self._stopped and self.failure is None

    def threads_alive(self) -> list[str]:
        return [self._thread.name] if self._thread.is_alive() else []

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the recording has played to its end (True) or ``timeout`` passed."""
        return self.finished.wait(timeout)

    # -- what widgets and subscribers read -----------------------------------------------
    def book(self, symbol: str) -> OrderBook:
        """The replayed book; read it under :meth:`locked` for a consistent view."""
        return self._books[self._known(symbol)]

    def recent_trades(self, symbol: str, after: int = 0) -> tuple[int, list[Trade]]:
        tape = self._tapes[self._known(symbol)]
        with self._lock:
            return tape.since(after)

    def locked(self) -> threading.Lock:
        return self._lock

    def subscribe(
        self,
        target: Target,
        *,
        kinds: Sequence[str] | None = None,
        symbols: Sequence[str] | None = None,
        maxsize: int = QUEUE_SIZE,
        name: str | None = None,
    ) -> Subscription:
        """As :meth:`workbench.feeds.feed.Feed.subscribe`: the replayed events, in order."""
        if self._stopped:
            raise UsageError(f"feed {self.name} is stopped; subscribe to a running feed")
        for symbol in symbols or ():
            self._known(symbol)
        with self._lock:
            return self._rec.subscribe(
                target,
                name=name or f"{self.name}#{len(self._rec.subscribers) + 1}",
                kinds=kinds,
                symbols=symbols,
                maxsize=maxsize,
                on_close=self._forget,
            )

    def status(self) -> FeedStatus:
        now = self.clock.now()
        with self._lock:
            playing = self.running and not self.finished.is_set()
            age = None if self._last_at is None else now - self._last_at
            return FeedStatus(
                name=self.name, exchange=self.exchange, symbols=list(self.symbols),
                running=self.running, connections=int(playing), messages=self.events,
                msgs_per_sec=self._rate, last_message_age=age, lag_ms=None,
                trades=self.trade_count, quotes=self.quote_count, reconnects=0, gaps=0,
                resyncs=0, duplicates=0, crossed=0, checksums=0, mismatches=0, stale=0,
                backfilled=0, quarantined=0, thread_errors=int(self.failure is not None),
                last_thread_error=self.failure, lingering_threads=list(self.lingering),
                book_valid={s: b.valid for s, b in self._books.items()},
                last_error=self.failure, failed=self.failure,
                subscribed={s: playing for s in self.symbols}, subscribed_once=list(self.symbols),
                subscribers=[sub.status() for sub in self._rec.subscribers],
            )  # fmt: skip

    # -- the playback thread -------------------------------------------------------------
    def _play(self) -> None:
        start, end = self._window
        recording = replay(
            self.path, exchange=self.exchange, symbols=self.symbols, start=start, end=end
        )
        events = iter(recording)
        try:
            if self._play_all(events):
                self.finished.set()
                log.info("feed %s: replayed %d events from %s", self.name, self.events, self.path)
        finally:
            events.close()  # an early stop: the recording's store is closed now, not at GC

    def _play_all(self, events: Iterator[Applied]) -> bool:
        """Apply every event (paced with ``speed``); False when stopped or failed first."""
        stop, clock, speed = self._stop, self.clock, self.speed
        began = flushed = clock.now()
        first_us: int | None = None
        batch: list[Applied] = []
        for applied in events:
            if stop.is_set():
                return False
            if speed is not None:
                at = applied.time_us
                first_us = at if first_us is None else first_us
                due = began + (at - first_us) / 1e6 / speed
                if due > clock.now():
                    self._apply(batch)  # what is due goes out before the wait
                    batch = []
                    if (
                        clock.now() - flushed >= FLUSH_INTERVAL
                        or due - clock.now() > FLUSH_INTERVAL
                    ):
                        if not self._flush():
                            return False
                        flushed = clock.now()
                    if clock.wait(stop, due - clock.now()):
                        return False
            batch.append(applied)
            if len(batch) >= BATCH:
                self._apply(batch)
                batch = []
                if speed is None and not self._flush():
                    return False
        self._apply(batch)
        return self._flush()

    def _flush(self) -> bool:
        """Rows to the sink; a sink that cannot store them fails the feed (False)."""
        with self._lock:
            self._rec.flush()
            fault = self._rec.sink_error or self.sink.fault
            if fault is not None and self.failure is None:
                self.failure = fault
        if fault is not None:
            log.error("feed %s failed: %s", self.name, fault)
            return False
        # Backpressure: played faster than the writer stores, the rows would pile up.
        while not self.sink.wait_for_room(FLUSH_INTERVAL):
            if self._stop.is_set():
                return False
        return True

    def _apply(self, batch: list[Applied]) -> None:
        if not batch:
            return
        rec = self._rec
        with self._lock:
            for applied in batch:
                event = applied.event
                if isinstance(event, BookChange):
                    self._book_change(event)
                elif isinstance(event, Trade):
                    rec.trade(event)
                    self._tapes[event.symbol].append(event)
                    self.trade_count += 1
                elif isinstance(event, Quote):
                    rec.quote(event)
                    self.quote_count += 1
                elif isinstance(event, BookTop):
                    self._books[event.symbol].valid = event.valid
                    rec.top(
                        event.symbol, event.ts, event.recv_ts, event.seq, event.valid,
                        event.bids, event.asks,
                    )  # fmt: skip
                else:
                    rec.quality(event.symbol, event.kind, event.detail, ts=event.ts)
            self.events += len(batch)
            now = self._last_at = self.clock.now()
            mark_time, mark_count = self._rate_mark
            if now - mark_time >= 1.0:
                self._rate = (self.events - mark_count) / (now - mark_time)
                self._rate_mark = (now, self.events)
            if rec.published:
                rec.publish()

    def _book_change(self, change: BookChange) -> None:
        apply_change(self._books[change.symbol], change)
        self._rec.book_change(change)

    # -- helpers -------------------------------------------------------------------------
    def _known(self, symbol: str) -> str:
        if symbol not in self._books:
            raise UsageError(f"{self.name} does not replay {symbol!r} (it has {self.symbols})")
        return symbol

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            self._rec.forget(subscription)

    def _crashed(self, error: ThreadError) -> None:
        with self._lock:
            self.failure = str(error)
            self._rec.quality(None, "thread_error", error.detail())
        log.error("feed %s failed: %s", self.name, error)
