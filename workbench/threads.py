"""Supervised background threads: no silent deaths, no unbounded joins.

Every background thread of the package (feed connections and maintenance, the store writer,
UI pumps, the simulator's threads; see docs/architecture.md, "Threads") runs its work inside
a :class:`SupervisedThread`. An exception that escapes the work is

1. logged with its traceback (``logging.exception``),
2. counted (:attr:`SupervisedThread.errors`, :attr:`SupervisedThread.last_error`),
3. handed to the owner's ``on_error`` as a :class:`ThreadError` (a feed writes it to
   ``quality_events`` as ``thread_error`` and shows it in its status), and then
4. either the work is started again after a capped exponential backoff (``restart=True``:
   for work that is a loop over state it can pick up again) or the thread ends and the
   owner, told ``action="fail"``, marks itself failed (work that cannot safely resume, such
   as the store writer mid-transaction, and restarting work that failed ``give_up_after``
   times in a row).

A restart waits on the owner's ``stop`` event, so stopping is never delayed by a backoff.
:func:`join_all` joins threads against one deadline and names the ones still alive, so an
owner's ``stop()`` can report (status + warning) a thread that would not end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

log = logging.getLogger(__name__)

RESTART_BASE = 0.1
"""Seconds before the first restart; doubled per consecutive failure up to the cap."""
RESTART_CAP = 5.0
HEALTHY_RUN = 30.0
"""A run that lasted this long before failing starts the backoff over: it was not a loop."""
GIVE_UP_AFTER = 10
"""Consecutive failures (no healthy run between) after which a restarting thread gives up:
work that fails every time is broken, and its owner must say so rather than retry forever."""


class ThreadError(Exception):
    """One exception that escaped a supervised thread's work, as its owner is told it.

    An exception itself (carrying only text, not the failed work's frames), so an owner can
    show it where it shows errors or raise it as the cause of its own failure."""

    def __init__(
        self,
        thread: str,
        type: str,
        message: str,
        *,
        count: int,
        action: Literal["restart", "fail"],
        delay: float | None,
    ) -> None:
        self.thread = thread
        self.type = type
        """The exception's class name."""
        self.message = message
        self.count = count
        """Errors of this thread so far, this one included."""
        self.action = action
        self.delay = delay
        """Seconds until the restart (None when the thread ends)."""
        then = f"restarting in {delay:.2g}s" if delay is not None else "not restarted"
        super().__init__(f"thread {thread} failed: {type}: {message} ({then})")

    def detail(self) -> dict[str, Any]:
        """The JSON ``detail`` of a ``thread_error`` quality event."""
        return {
            "thread": self.thread,
            "type": self.type,
            "message": self.message,
            "count": self.count,
            "action": self.action,
        }


ErrorCallback = Callable[[ThreadError], None]


def restart_delay(consecutive: int, base: float = RESTART_BASE, cap: float = RESTART_CAP) -> float:
    """Seconds to wait before restart number ``consecutive`` (1, 2, …): base·2^(n−1), capped."""
    return min(cap, base * 2.0 ** min(consecutive - 1, 64))


class SupervisedThread(threading.Thread):
    """A daemon thread running ``work`` under the policy in the module docstring.

    ``work`` returning normally ends the thread. ``stop`` is the owner's stop event: once it
    is set, a failed run is reported but not restarted.
    """

    def __init__(
        self,
        work: Callable[[], None],
        *,
        name: str,
        restart: bool,
        on_error: ErrorCallback | None = None,
        stop: threading.Event | None = None,
        base: float = RESTART_BASE,
        cap: float = RESTART_CAP,
        healthy_run: float = HEALTHY_RUN,
        give_up_after: int = GIVE_UP_AFTER,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._work = work
        self._restart = restart
        self._on_error = on_error
        self._stop_event = stop or threading.Event()
        self._base = base
        self._cap = cap
        self._healthy_run = healthy_run
        self._give_up_after = give_up_after
        self._count_lock = threading.Lock()
        self._errors = 0
        self._last_error: ThreadError | None = None

    @property
    def errors(self) -> int:
        with self._count_lock:
            return self._errors

    @property
    def last_error(self) -> ThreadError | None:
        with self._count_lock:
            return self._last_error

    def run(self) -> None:
        consecutive = 0
        while True:
            began = time.monotonic()
            try:
                self._work()
                return
            except Exception as exc:
                log.exception("thread %s failed", self.name)
                healthy = time.monotonic() - began >= self._healthy_run
                consecutive = 1 if healthy else consecutive + 1
                again = (
                    self._restart
                    and consecutive < self._give_up_after
                    and not self._stop_event.is_set()
                )
                delay = restart_delay(consecutive, self._base, self._cap) if again else None
                error = self._note(exc, delay)
                self._tell(error)
                del exc  # the traceback holds the work's frames: let them go before waiting
            if delay is None or self._stop_event.wait(delay):
                return

    def _note(self, exc: Exception, delay: float | None) -> ThreadError:
        with self._count_lock:
            self._errors += 1
            error = ThreadError(
                self.name,
                type(exc).__name__,
                " ".join(str(exc).split()),
                count=self._errors,
                action="restart" if delay is not None else "fail",
                delay=delay,
            )
            self._last_error = error
            return error

    def _tell(self, error: ThreadError) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(error)
        except Exception:  # the report failing must not end a thread that would restart
            log.exception("thread %s: its error callback failed", self.name)


def join_all(
    threads: Iterable[threading.Thread], timeout: float, *, owner: str | None = None
) -> list[str]:
    """Join ``threads`` within ``timeout`` seconds in all; the names of those still alive.

    Threads never started count as ended. With ``owner``, survivors are logged as a warning
    naming them (the owner also shows them in its status)."""
    deadline = time.monotonic() + timeout
    current = threading.current_thread()
    alive: list[str] = []
    for thread in threads:
        if thread.ident is None or thread is current:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            alive.append(thread.name)
    if alive and owner is not None:
        log.warning("%s: threads still alive %gs after stop: %s", owner, timeout, ", ".join(alive))
    return alive
