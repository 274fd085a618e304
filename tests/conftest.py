"""Fixtures shared across test modules."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.helpers.replay_server import ReplayServer
from tests.helpers.threads import LEAK_WAIT, leaked_threads


@pytest.fixture
def servers() -> Iterator[list[ReplayServer]]:
    """Replay servers a test starts (see ``tests.venue_e2e.serve``), stopped afterwards."""
    started: list[ReplayServer] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (see ``tests.helpers.threads``)."""
    before = set(threading.enumerate())
    yield
    leaked = leaked_threads(before)
    if leaked:
        pytest.fail(f"the test left threads running {LEAK_WAIT:g}s after it ended: {leaked}")
