"""The Clock seam: every timer of a feed, a widget pump or a replay reads time through it.

Live code runs on :data:`workbench.clock.WALL`; tests and replays pass a
:class:`workbench.clock.ManualClock`, whose time moves only when told to, so timing behaviour
(heartbeats, the silence watchdog, the gap timeout, snapshot intervals, pump ticks, replay
pacing) is exact and needs no sleeping. What stays on real time: socket timeouts (the kernel
knows no other clock) and the writer's commit cadence (a storage concern, not market time).
"""

from __future__ import annotations

from typing import Protocol


class Stop(Protocol):
    """What a wait can be cut short by (a ``threading.Event``)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a clock that never goes back (for intervals and deadlines)."""
        ...

    def time_us(self) -> int:
        """Wall-clock microseconds since the Unix epoch (for row timestamps)."""
        ...

    def wait(self, stop: Stop, seconds: float) -> bool:
        """Wait until ``seconds`` have passed on this clock or ``stop`` is set, whichever
        comes first; returns whether ``stop`` is set."""
        ...
