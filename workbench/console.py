"""What the commands share at the console: waiting for their work under SIGINT/SIGTERM, and
the ``--progress`` lines of committed rows."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType


def wait_until(
    duration: float | None,
    until: Callable[[], bool] = lambda: False,
    *,
    ready: Callable[[], None] = lambda: None,
) -> bool:
    """Sleep until ``duration`` passes, SIGINT/SIGTERM arrives or ``until()`` holds; returns
    whether a signal ended the wait (the command then winds down as if finished). ``ready``
    runs once the signals are caught: whatever it announces can be interrupted cleanly."""
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ready()
        deadline = None if duration is None else time.monotonic() + duration
        while not done.is_set() and not until():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            done.wait(0.2 if remaining is None else min(0.2, remaining))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return done.is_set()


def commit_printer() -> Callable[[dict[str, int]], None]:
    """A store writer's ``on_commit`` that prints the running row totals after each commit:
    ``committed book_deltas=120 trades=12``."""
    totals: dict[str, int] = {}

    def progress(committed: dict[str, int]) -> None:
        for table, rows in committed.items():
            totals[table] = totals.get(table, 0) + rows
        line = " ".join(f"{t}={n}" for t, n in sorted(totals.items()))
        print(f"committed {line}", flush=True)

    return progress
