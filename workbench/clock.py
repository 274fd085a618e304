"""The clocks behind :class:`workbench.core.clock.Clock`: real time, manual time, and event time."""

from __future__ import annotations

import threading
import time

from workbench.core.clock import Clock, Stop

__all__ = ["WALL", "Clock", "EventClock", "ManualClock", "WallClock"]

_POLL = 0.005
"""Real seconds between a manual-clock waiter's looks at its stop event: setting an event
notifies nobody but its own waiters, so the waiter must look."""


class WallClock:
    """Real time: ``time.monotonic``, ``time.time_ns`` and waits on the stop event itself."""

    def now(self) -> float:
        return time.monotonic()

    def time_us(self) -> int:
        return time.time_ns() // 1000

    def wait(self, stop: Stop, seconds: float) -> bool:
        return stop.wait(max(0.0, seconds))


WALL = WallClock()


class ManualClock:
    """Time that moves only by :meth:`advance` (thread-safe), or — with ``advance_on_wait`` —
    by each wait jumping to its own deadline, which runs a single-threaded schedule (a pump,
    a replay at full speed) without real waiting.

    ``waits`` counts the waits begun: a test that advances the clock and then waits for the
    count to grow knows the woken thread has done its round of work and is waiting again.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        epoch_us: int = 1_700_000_000_000_000,
        advance_on_wait: bool = False,
    ) -> None:
        self._start = start
        self._now = start
        self._epoch_us = epoch_us
        self._advance_on_wait = advance_on_wait
        self._changed = threading.Condition()
        self.waits = 0

    def now(self) -> float:
        return self._now

    def time_us(self) -> int:
        return self._epoch_us + round((self._now - self._start) * 1e6)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock never goes back; cannot advance by {seconds}")
        with self._changed:
            self._now += seconds
            self._changed.notify_all()

    def wait(self, stop: Stop, seconds: float) -> bool:
        with self._changed:
            self.waits += 1
            self._changed.notify_all()
            if self._advance_on_wait:
                self._now += max(0.0, seconds)
                return stop.is_set()
            deadline = self._now + seconds
            while not stop.is_set() and self._now < deadline:
                self._changed.wait(_POLL)
        return stop.is_set()

    def wait_for_waits(self, count: int, timeout: float = 10.0) -> bool:
        """Block (real time) until ``waits`` reaches ``count``; False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.waits >= count, timeout)


class EventClock:
    """Simulated time in a single-threaded run: the time of the event being processed, which
    its engine writes to :attr:`us` (the engine has checked its events are in time order),
    so a strategy's ``now`` in a backtest is the time the data says. Waiting takes no time:
    nothing else happens until the next event."""

    __slots__ = ("us",)

    def __init__(self, time_us: int) -> None:
        self.us = time_us

    def now(self) -> float:
        return self.us / 1e6

    def time_us(self) -> int:
        return self.us

    def wait(self, stop: Stop, seconds: float) -> bool:
        return stop.is_set()
