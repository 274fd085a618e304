"""The thread-leak check behind the suite's autouse fixture (tests/conftest.py)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Collection

LEAK_WAIT = 2.0
"""Seconds a test's threads get to end after it (and its fixtures) finished."""

PROCESS_WIDE = re.compile(
    # IPython's history writer: one per InteractiveShell, and the tests' shell is the
    # process-wide singleton (InteractiveShell.instance()), alive until exit.
    r"IPythonHistorySavingThread"
    # distributed's offload executor: a module-level pool of one thread, made on first use.
    r"|Dask-Offload_0"
    # tqdm's monitor: one per process, started by the first progress bar; it ends on its own
    # up to 10 s after the last bar closed.
    r"|tqdm_monitor"
)
"""Threads a library starts once per process on first use and keeps for the process's life:
whichever test uses it first did not leak them. Exact names only, each with its reason."""


def leaked_threads(before: Collection[threading.Thread], wait: float = LEAK_WAIT) -> list[str]:
    """The names of threads (daemon or not) not in ``before`` that are still alive after
    waiting up to ``wait`` seconds for them to end; sorted, empty when none."""
    deadline = time.monotonic() + wait
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not PROCESS_WIDE.fullmatch(t.name)
        ]
        if not leaked or time.monotonic() >= deadline:
            return sorted(t.name for t in leaked)
        leaked[0].join(min(0.05, max(0.0, deadline - time.monotonic())))
