"""A feed subscription as the event stream the trade/book engine runs on, live.

The runner drives a strategy through the same engine as ``backtest_ticks``
(:class:`~workbench.engine.ticks.TickEngine`); only where the events come from differs. Here
they come from a :meth:`Feed.subscribe <workbench.feeds.feed.Feed.subscribe>` queue: the
trades and book changes of one symbol, in the order the feed applied them, each stamped
with the time its socket read it — the times a recording of the same session holds.

A quiet market must not stop the clock: a bar has to close at its end, an order in flight
reach the book, a timer fire, even when nothing trades. So when the queue has been empty
for ``tick_s``, the source yields a :class:`~workbench.engine.ticks.ClockTick` at the
clock's time less ``grace_s``. The grace keeps the tick's promise (nothing received before
it is still to come): an event the feed thread has read but not yet published is stamped
at most that long ago.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Protocol

from workbench.clock import WALL
from workbench.core.clock import Clock
from workbench.engine.ticks import ClockTick
from workbench.events import Applied, BookChange, Trade
from workbench.feeds.subscription import Subscription, Target

TICK_S = 0.1
"""Seconds without an event after which the clock is moved by a tick."""
GRACE_S = 0.25
"""How far behind the clock a tick is stamped (see the module docstring)."""


class Subscribable(Protocol):
    def subscribe(
        self, target: Target, *, kinds: list[str], symbols: list[str], name: str
    ) -> Subscription: ...


class LiveSource:
    """``symbol``'s trades and book changes from ``feed``, with clock ticks when it is quiet;
    iterate it once. :meth:`stop` (from any thread) ends the iteration at the next event or
    tick, and closes the subscription."""

    def __init__(
        self,
        feed: Subscribable,
        symbol: str,
        *,
        clock: Clock = WALL,
        tick_s: float = TICK_S,
        grace_s: float = GRACE_S,
    ) -> None:
        self.symbol = symbol
        self.received = 0  # events yielded (ticks not counted)
        self.ticks = 0
        self._clock = clock
        self._tick_s = tick_s
        self._grace_us = round(grace_s * 1e6)
        self._queue: queue.Queue[Applied] = queue.Queue()
        self._stop = threading.Event()
        self.subscription = feed.subscribe(
            self._queue, kinds=["trade", "book"], symbols=[symbol], name=f"runner {symbol}"
        )

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def __iter__(self) -> Iterator[Trade | BookChange | ClockTick]:
        take, stop = self._queue.get, self._stop
        try:
            while not stop.is_set():
                try:
                    applied = take(timeout=self._tick_s)
                except queue.Empty:
                    self.ticks += 1
                    yield ClockTick(self._clock.time_us() - self._grace_us)
                    continue
                event = applied.event
                assert isinstance(event, (Trade, BookChange))  # the kinds subscribed to
                self.received += 1
                yield event
        finally:
            self.subscription.close()
