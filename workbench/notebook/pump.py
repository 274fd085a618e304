"""The UI pump: one daemon thread per widget that calls its ``render()`` at a fixed rate.

Why a thread and a fixed-rate schedule (see docs/architecture.md, "Threads"), not the kernel's
event loop: a coroutine on the kernel's loop would stall while a cell runs. Ticks are scheduled
on a monotonic :class:`Clock` at ``start + k / rate``; a render that overruns makes the pump
skip the ticks it missed (counted) rather than fire them back to back, so a slow frontend or a
busy GIL can lower the frame rate but never builds a backlog. The clock is a parameter so that
tests can drive the schedule without waiting on real time.

A render exception never ends the thread: it is counted and handed to ``on_error`` (widgets
append it to their ``ipywidgets.Output`` with ``append_stderr``, the route that stays with
the widget under ipykernel 7 instead of landing in whichever cell ran last). A failure of the
loop itself (its clock, its bookkeeping) is supervised (``workbench.threads``): logged with
its traceback, counted in ``thread_errors``, handed to ``on_error`` as a
:class:`~workbench.threads.ThreadError`, and the loop restarts after a short backoff.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from workbench.clock import WALL
from workbench.core.clock import Clock
from workbench.errors import UsageError
from workbench.threads import SupervisedThread, ThreadError, join_all

RECENT = 1000
"""Render times kept for the percentiles in :class:`PumpStats` (the newest ones)."""


@dataclass(frozen=True)
class PumpStats:
    """A consistent snapshot of a pump's counters; times in seconds unless named ``_ms``."""

    ticks: int
    """Renders run (successful or not)."""
    skipped: int
    """Scheduled ticks dropped because a render overran them."""
    errors: int
    """Renders that raised."""
    thread_errors: int
    """Failures of the pump loop itself (restarted, until 10 in a row end the pump)."""
    last_error: str | None
    render_seconds: float
    """Total time spent in ``render()``: with ``ticks`` a mean over any interval."""
    lag_seconds: float
    """Total delay of tick starts behind their scheduled times."""
    lag_max_ms: float
    render_p50_ms: float
    render_p99_ms: float
    render_max_ms: float
    """Percentiles and max over the newest ``RECENT`` renders (NaN before the first)."""


class UIPump:
    """Calls ``render`` at ``rate`` Hz on a daemon thread named ``wb-pump-<name>``."""

    def __init__(
        self,
        render: Callable[[], None],
        *,
        rate: float = 10.0,
        name: str,
        on_error: Callable[[Exception], None] | None = None,
        clock: Clock = WALL,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise UsageError(f"pump rate must be a positive number of Hz, got {rate!r}")
        self.name = name
        self.rate = rate
        self._render = render
        self._on_error = on_error
        self._clock = clock
        self._stop = threading.Event()
        self._thread = SupervisedThread(
            self._run,
            name=f"wb-pump-{name}",
            restart=True,
            on_error=self._loop_failed,
            stop=self._stop,
        )
        self._lock = threading.Lock()
        self._ticks = 0
        self._skipped = 0
        self._errors = 0
        self._thread_errors = 0
        self._last_error: str | None = None
        self._render_total = 0.0
        self._lag_total = 0.0
        self._lag_max = 0.0
        self._recent: deque[float] = deque(maxlen=RECENT)

    def start(self) -> UIPump:
        if self._thread.ident is not None:
            raise UsageError(f"pump {self.name} was already started")
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the loop to end and join it; from inside ``render`` it ends after this tick."""
        self._stop.set()
        join_all([self._thread], timeout, owner=f"pump {self.name}")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def thread_name(self) -> str:
        return self._thread.name

    @property
    def stats(self) -> PumpStats:
        with self._lock:
            recent = sorted(self._recent)
            return PumpStats(
                ticks=self._ticks,
                skipped=self._skipped,
                errors=self._errors,
                thread_errors=self._thread_errors,
                last_error=self._last_error,
                render_seconds=self._render_total,
                lag_seconds=self._lag_total,
                lag_max_ms=self._lag_max * 1e3,
                render_p50_ms=_percentile(recent, 0.50) * 1e3,
                render_p99_ms=_percentile(recent, 0.99) * 1e3,
                render_max_ms=(recent[-1] if recent else float("nan")) * 1e3,
            )

    def _run(self) -> None:
        period = 1.0 / self.rate
        clock = self._clock
        due = clock.now()
        while not self._stop.is_set():
            now = clock.now()
            if now < due:
                clock.wait(self._stop, due - now)
                continue  # re-check stop, and the clock (wait may return early)
            scheduled = due
            failure: str | None = None
            try:
                self._render()
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}"
                self._report(exc)
            after = clock.now()
            elapsed = after - now
            due = scheduled + period
            missed = 0
            if after >= due:  # overran the next tick(s): skip them, keep the grid
                missed = int((after - due) // period) + 1
                due += missed * period
            self._record(now - scheduled, elapsed, missed, failure)

    def _record(self, lag: float, elapsed: float, missed: int, failure: str | None) -> None:
        with self._lock:
            self._ticks += 1
            self._skipped += missed
            self._render_total += elapsed
            self._lag_total += lag
            self._lag_max = max(self._lag_max, lag)
            self._recent.append(elapsed)
            if failure is not None:
                self._errors += 1
                self._last_error = failure

    def _loop_failed(self, error: ThreadError) -> None:
        with self._lock:
            self._thread_errors += 1
            self._last_error = str(error)
        self._report(error)

    def _report(self, exc: Exception) -> None:
        if self._on_error is None:
            return
        # If showing the error fails too (a closed widget), the error count still records it.
        with contextlib.suppress(Exception):
            self._on_error(exc)


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list; NaN when empty."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
