"""Fixtures shared across test modules."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest

from tests.helpers.replay_server import ReplayServer


@pytest.fixture
def servers() -> Iterator[list[ReplayServer]]:
    """Replay servers a test starts (see ``tests.venue_e2e.serve``), stopped afterwards."""
    started: list[ReplayServer] = []
    yield started
    for server in started:
        server.stop()


LEAK_WAIT = 2.0
"""Seconds a test's threads get to end after it (and its fixtures) finished."""

PROCESS_WIDE = re.compile(
    "|".join(
        (
            # asyncio's default executor (loop.run_in_executor, getaddrinfo) keeps its workers
            # until the loop closes; the jupyter/zmq clients of the notebook tests use it.
            r"asyncio_\d+",
        )
    )
)
"""Threads a library starts once per process on first use and keeps for the process's life:
whichever test uses it first did not leak them. Exact names only, each with its reason."""


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running: every thread it started (daemon or not)
    must have ended within ``LEAK_WAIT`` seconds of its teardown."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + LEAK_WAIT
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not PROCESS_WIDE.fullmatch(t.name)
        ]
        if not leaked or time.monotonic() >= deadline:
            break
        leaked[0].join(min(0.05, max(0.0, deadline - time.monotonic())))
    if leaked:
        names = ", ".join(sorted(t.name for t in leaked))
        pytest.fail(f"the test left threads running {LEAK_WAIT:g}s after it ended: {names}")
