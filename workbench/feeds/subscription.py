"""Subscribers to a feed's applied event stream: each with a bounded queue and its own thread.

A feed publishes every applied event (:class:`~workbench.events.Applied`) under its lock, in
apply order, and hands each subscriber the ones it asked for without ever waiting on it: the
subscriber's queue holds at most ``maxsize`` events and, when it is full, the OLDEST are dropped
(counted, and the feed writes a ``subscriber_overflow`` quality event per overflowing stretch),
so a slow subscriber loses its backlog rather than slowing the recording. The delivery thread
calls the callback (or puts into the queue) outside the feed's lock; an exception in a callback
is logged, counted and shown in the status, and delivery carries on with the next event.
While any subscription is open, Python's young GC threshold is raised (:mod:`young_gc`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import msgspec

from workbench.errors import UsageError
from workbench.events import APPLIED_KINDS, Applied
from workbench.feeds import young_gc
from workbench.threads import SupervisedThread

log = logging.getLogger(__name__)

QUEUE_SIZE = 100_000
"""Events a subscriber may fall behind by before the oldest are dropped."""
PUT_POLL = 0.1
"""Seconds between checks for close while a full user queue blocks the delivery thread."""

Target = Callable[[Applied], Any] | queue.Queue[Applied]


class SubscriberStatus(msgspec.Struct, frozen=True):
    name: str
    kinds: list[str]
    symbols: list[str] | None
    """None: every symbol of the feed."""
    queued: int
    """Events waiting for the delivery thread."""
    delivered: int
    dropped: int
    """Events dropped because the queue was full (oldest first), or left when it was closed."""
    errors: int
    """Exceptions raised by the callback (each logged; delivery carried on)."""
    last_error: str | None
    alive: bool


class Subscription:
    """One subscriber of a feed; :meth:`close` (or the feed's stop) ends its delivery thread."""

    def __init__(
        self,
        target: Target,
        *,
        name: str,
        kinds: Iterable[str] | None = None,
        symbols: Iterable[str] | None = None,
        maxsize: int = QUEUE_SIZE,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        if isinstance(target, queue.Queue):
            self._deliver = self._put_into(target)
        elif callable(target):
            self._deliver = target
        else:
            raise UsageError(
                f"subscribe() takes a callable or a queue.Queue, got {type(target).__name__}"
            )
        chosen = list(APPLIED_KINDS) if kinds is None else list(dict.fromkeys(kinds))
        unknown = [k for k in chosen if k not in APPLIED_KINDS]
        if unknown or not chosen:
            raise UsageError(
                f"unknown event kinds {unknown or chosen}; choose from {', '.join(APPLIED_KINDS)}"
            )
        if maxsize < 1:
            raise UsageError(f"maxsize must be at least 1, got {maxsize}")
        self.name = name
        self.kinds = frozenset(chosen)
        self.symbols = None if symbols is None else frozenset(symbols)
        self.maxsize = maxsize
        self._takes_all = self.symbols is None and len(self.kinds) == len(APPLIED_KINDS)
        self._on_close = on_close
        self._queue: deque[Applied] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._drain_until = float("inf")
        self._closing = False
        """Set with ``_closed``: a plain attribute, read per delivered event."""
        self._holds_gc = False
        """Started and not closed yet: one of the holders of :mod:`young_gc`'s threshold."""
        self._overflowing = False
        self.delivered = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None
        # Exceptions of the user's code are caught per event below; the supervisor covers ours.
        self._thread = SupervisedThread(
            self._run, name=f"wb-sub-{name}", restart=True, stop=self._closed
        )

    def start(self) -> Subscription:
        young_gc.hold()
        self._holds_gc = True
        self._thread.start()
        return self

    def wants(self, event: Applied) -> bool:
        if event.kind not in self.kinds:
            return False
        if self.symbols is None:
            return True
        symbol = event.event.symbol
        return symbol is None or symbol in self.symbols  # feed-wide incidents concern everyone

    def offer(self, events: list[Applied]) -> int:
        """Queue the wanted ``events`` without blocking; the number of queued events dropped
        to make room when this begins an overflowing stretch (else 0), for the feed to log."""
        if self._closed.is_set():
            return 0
        wanted = events if self._takes_all else [e for e in events if self.wants(e)]
        if not wanted:
            return 0
        with self._lock:
            q = self._queue
            q.extend(wanted)
            excess = len(q) - self.maxsize
            if excess > 0:
                for _ in range(excess):
                    q.popleft()
                self.dropped += excess
            began = excess > 0 and not self._overflowing
            if began:
                self._overflowing = True
        self._wake.set()
        return excess if began else 0

    def close(self, timeout: float = 1.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then end the thread; events
        still queued then count as dropped. Safe to call twice."""
        if self._closed.is_set():
            return
        self._drain_until = time.monotonic() + timeout
        self._closing = True
        self._closed.set()
        self._wake.set()
        if self._holds_gc:
            self._holds_gc = False
            young_gc.release()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout + PUT_POLL)
            if self._thread.is_alive():
                log.warning("subscriber %s: delivery thread still busy after close", self.name)
        if self._on_close is not None:
            self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def status(self) -> SubscriberStatus:
        with self._lock:
            queued = len(self._queue)
        return SubscriberStatus(
            name=self.name,
            kinds=[k for k in APPLIED_KINDS if k in self.kinds],
            symbols=None if self.symbols is None else sorted(self.symbols),
            queued=queued,
            delivered=self.delivered,
            dropped=self.dropped,
            errors=self.errors,
            last_error=self.last_error,
            alive=self._thread.is_alive(),
        )

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
                self._overflowing = False
            if not self._deliver_all(batch):
                return
            if self._closing:
                with self._lock:
                    if not self._queue:
                        return
                self._wake.set()  # more arrived while closing: deliver it before the deadline

    def _deliver_all(self, batch: list[Applied]) -> bool:
        """Hand ``batch`` to the target; False when closing ran out of time first."""
        deliver = self._deliver
        done = 0
        while done < len(batch):
            try:
                for event in islice(batch, done, None):
                    if self._closing and time.monotonic() > self._drain_until:
                        self._abandon(len(batch) - done)
                        return False
                    deliver(event)
                    done += 1
                    self.delivered += 1
            except _Abandoned:
                self._abandon(len(batch) - done)
                return False
            except Exception as exc:  # the user's bug: counted and reported, delivery goes on
                self._note_error(exc, batch[done])
                done += 1
                self.delivered += 1
        return True

    def _abandon(self, undelivered: int) -> None:
        with self._lock:
            left = undelivered + len(self._queue)
            self._queue.clear()
            self.dropped += left
        log.warning("subscriber %s closed with %d events undelivered", self.name, left)

    def _note_error(self, exc: Exception, event: Applied) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc} (at ingest_seq {event.ingest_seq})"
        if self.errors == 1:  # the first with its traceback; the rest are counted, not flooded
            log.exception("subscriber %s raised on %s event", self.name, event.kind)
        else:
            log.error("subscriber %s raised again (%d so far): %s", self.name, self.errors, exc)

    def _put_into(self, target: queue.Queue[Applied]) -> Callable[[Applied], None]:
        def put(event: Applied) -> None:
            while True:  # a full user queue blocks this thread only, and never past close
                try:
                    target.put(event, timeout=PUT_POLL)
                    return
                except queue.Full:
                    if self._closed.is_set() and time.monotonic() > self._drain_until:
                        raise _Abandoned from None

        return put


class _Abandoned(Exception):
    """Closing ran out of time while the user's queue was full."""
