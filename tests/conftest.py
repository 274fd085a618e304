"""Fixtures shared across test modules."""

from __future__ import annotations

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
