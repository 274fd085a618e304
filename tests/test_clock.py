"""Timing behaviour on the manual clock: heartbeats, the silence watchdog, the backoff wait and
the gap timeout fire exactly when their clock says, with no sleeping in the test.

Real time still passes (threads run, sockets carry frames), but only as "until it happened";
every *when* is the manual clock's. The replay server's ``barrier`` (a ping the client answers
after handling everything before it) marks a point the connection thread has passed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import wait_for
from tests.helpers.replay_server import ReplayServer, Script
from tests.test_feed_runtime import BOOK, delta, rest_book
from workbench.clock import WALL, ManualClock
from workbench.feeds.connection import Backoff, Connection
from workbench.feeds.feed import Feed
from workbench.store import Store

SYM = "BTC-USD"
HEARTBEAT = '{"op":"ping"}'


class Handler:
    """Records what a connection reports, disconnects with their reasons."""

    def __init__(self) -> None:
        self.disconnects: list[tuple[str, bool]] = []
        self.connects = 0

    def on_connected(self, conn: int) -> list[str]:
        self.connects += 1
        return ['{"op":"subscribe"}']  # the replay server's cue to send its script

    def on_messages(self, conn: int, payloads: list[bytes], recv_ts: int) -> None:
        pass

    def on_oversized(self, conn: int, prefix: bytes, recv_ts: int) -> None:
        pass

    def on_disconnected(self, conn: int, reason: str, *, stale: bool) -> None:
        self.disconnects.append((reason, stale))


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    server = ReplayServer([Script([b'{"hello":1}'])]).start()
    yield server
    server.stop()


def connection(
    server: ReplayServer,
    clock: ManualClock,
    handler: Handler,
    *,
    heartbeat_interval: float = 0.0,
    stale_after: float = 3600.0,
) -> Connection:
    return Connection(
        1,
        server.ws_url,
        handler,
        heartbeat=lambda: HEARTBEAT,
        heartbeat_interval=heartbeat_interval,
        stale_after=stale_after,
        backoff=Backoff(base=1.0, cap=1.0),
        name="clocked",
        clock=clock,
    )


def heartbeats(server: ReplayServer) -> int:
    return sum(m == HEARTBEAT.encode() for m in server.received)


def test_the_manual_clock_moves_only_when_advanced_and_wakes_its_waiters() -> None:
    clock = ManualClock(start=5.0, epoch_us=1_000_000)
    assert (clock.now(), clock.time_us()) == (5.0, 1_000_000)
    stop = threading.Event()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(clock.wait(stop, 2.0)))
    waiter.start()
    assert clock.wait_for_waits(1)
    clock.advance(1.5)
    assert waiter.is_alive() and woke == []
    clock.advance(0.5)
    waiter.join(10)
    assert woke == [False] and clock.now() == 7.0 and clock.time_us() == 3_000_000
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1)
    stopped = threading.Thread(target=lambda: woke.append(clock.wait(stop, 1e9)))
    stopped.start()
    assert clock.wait_for_waits(2)
    stop.set()
    stopped.join(10)
    assert woke == [False, True]


def test_a_clock_that_advances_on_wait_runs_a_schedule_at_once() -> None:
    clock = ManualClock(advance_on_wait=True)
    stop = threading.Event()
    for _ in range(4):
        assert clock.wait(stop, 0.25) is False
    assert clock.now() == 1.0 and clock.waits == 4
    assert WALL.wait(stop, 0.0) is False


def test_heartbeats_go_out_every_interval_of_the_clock(server: ReplayServer) -> None:
    clock = ManualClock()
    conn = connection(server, clock, Handler(), heartbeat_interval=10.0)
    conn.start()
    try:
        assert wait_for(lambda: server.settled, 10) and server.barrier()
        clock.advance(9.9)
        assert server.barrier()
        assert heartbeats(server) == 0  # every receive round so far saw the clock before 10 s
        clock.advance(0.1)
        assert wait_for(lambda: heartbeats(server) == 1, 10)
        clock.advance(9.9)
        assert server.barrier() and heartbeats(server) == 1
        clock.advance(0.1)
        assert wait_for(lambda: heartbeats(server) == 2, 10)
    finally:
        conn.stop()
        assert conn.join(10)


def test_the_watchdog_drops_a_silent_session_then_the_backoff_waits_on_the_clock(
    server: ReplayServer,
) -> None:
    clock = ManualClock()
    handler = Handler()
    conn = connection(server, clock, handler, stale_after=30.0)
    conn.start()
    try:
        assert wait_for(lambda: server.settled, 10) and server.barrier()
        clock.advance(30.0)  # silent for exactly the limit: not yet more than it
        assert server.barrier() and handler.disconnects == []
        # the barrier's ping was data at 30 s; 30.5 s of silence after it is too much
        clock.advance(30.5)
        assert wait_for(lambda: handler.disconnects != [], 10)
        assert handler.disconnects == [("no data for 30.5s", True)]
        assert clock.wait_for_waits(1)  # in the backoff wait (0.5-1 s on the clock)
        assert handler.connects == 1 and server.connections == 1
        clock.advance(1.0)
        assert wait_for(lambda: handler.connects == 2 and server.connections == 2, 10)
    finally:
        conn.stop()
        assert conn.join(10)


def test_the_gap_timeout_waits_for_the_twin_on_the_clock(tmp_path: Path) -> None:
    """Redundant connections: a hole in one stream waits ``gap_timeout`` for the other to fill
    it; only then is it a gap. The twin sends the book at 1 and stays there; once it is up, the
    other stream carries 2 and 4."""
    clock = ManualClock()
    holey = Script([delta(2, bids=[["99.0", "1"]]), delta(4, asks=[["102.0", "1"]])], after=1)
    rest: dict[str, bytes | list[bytes]] = {
        f"/book/{SYM}": rest_book(4, [["100.0", "1"]], [["100.5", "1"]], 10)
    }
    server = ReplayServer([Script([BOOK]), holey], rest=rest).start()
    with Store.open(tmp_path / "gap.duckdb") as store:
        feed = Feed(
            "sim", [SYM], store.writer, ws_url=server.ws_url, rest_url=server.rest_url,
            redundant=True, backfill=False, gap_timeout=2.0, clock=clock,
        ).start()  # fmt: skip
        try:
            assert wait_for(lambda: server.settled and feed.status().connections == 2, 10)
            assert server.barrier()
            rounds = clock.waits
            clock.advance(1.9)
            assert clock.wait_for_waits(rounds + 1)  # a maintenance round ran at 1.9 s
            store.flush()
            assert feed.status().gaps == 0 and feed.book(SYM).seq == 2
            rounds = clock.waits
            clock.advance(0.1)
            assert clock.wait_for_waits(rounds + 1)
            assert feed.status().gaps == 1
            clock.advance(1.0)  # the resync from REST, in a later round
            assert wait_for(lambda: feed.status().book_valid == {SYM: True}, 10)
        finally:
            feed.stop()
            server.stop()
        store.flush()
        with store.cursor() as cur:
            details = cur.execute("SELECT detail FROM quality_events WHERE kind = 'gap'").fetchall()
    gaps = {g["scope"]: g for g in (json.loads(d) for (d,) in details)}
    assert gaps["feed"]["from_seq"] == 3 and gaps["feed"]["rule"] == "contiguous"
    assert gaps["connection"]["conn"] in (1, 2)  # the stream that skipped 3 says so too
