"""A feed survives a silent server, a server that is not there yet, and retries politely.

The stall test runs a real simulator that stalls connections (no data, no heartbeats, until
the client hangs up) and checks the recording against the simulator's own REST trade tape.
"""

from __future__ import annotations

import json
import random
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import free_port, wait_for
from tests.helpers.replay_server import ReplayServer, Script
from tests.venue_e2e import serve
from workbench.feeds.connection import Backoff, Connection
from workbench.feeds.feed import Feed
from workbench.sim.server import SimConfig, SimServer
from workbench.store import Store

SYM = "BTC-USD"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "resilience.duckdb") as s:
        yield s


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    store.flush()
    with store.cursor() as cur:
        return cur.execute(sql).fetchall()


def initial_snapshot_seq(store: Store) -> int | None:
    details = [json.loads(d) for (d,) in rows(store, "SELECT detail FROM quality_events")]
    seqs = [d["snapshot_seq"] for d in details if d.get("initial")]
    return min(seqs) if seqs else None


def rest_trades(sim: SimServer, symbol: str) -> list[dict[str, Any]]:
    """Every trade the simulator generated, paged through ``/trades/{symbol}?since_id=``."""
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        url = f"{sim.rest_url}/trades/{symbol}?since_id={since}&limit=5000"
        with urllib.request.urlopen(url, timeout=10) as response:
            page = json.load(response)["trades"]
        out += page
        if len(page) < 5000:
            return out
        since = page[-1]["trade_id"]


def test_a_stalled_connection_is_detected_and_reconnected_without_losing_a_trade(
    store: Store,
) -> None:
    config = SimConfig(
        port=0, seed=8, symbols=(SYM,), rate=200, stall_every=1.5, duration=7.0, grace=60.0
    )
    with SimServer(config) as sim:
        feed = Feed("sim", [SYM], store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url).start()
        try:
            assert wait_for(lambda: initial_snapshot_seq(store) is not None, 10)
            first = initial_snapshot_seq(store)
            assert first is not None
            assert wait_for(lambda: feed.status().stale >= 1 and feed.status().reconnects >= 1, 15)
            assert sim.halted.wait(15)  # order flow over: the REST tape is now complete
            expected = sorted(t["trade_id"] for t in rest_trades(sim, SYM) if t["seq"] > first)
            assert len(expected) > 100

            def caught_up() -> bool:
                s = feed.status()
                return (
                    s.connections == 1 and s.book_valid == {SYM: True} and s.trades >= len(expected)
                )

            assert wait_for(caught_up, 15), feed.status()
        finally:
            feed.stop()
    status = feed.status()
    assert status.book_valid == {SYM: True}
    assert status.stale >= 1 and status.reconnects >= 1
    assert status.trades == len(expected)
    stored = sorted(int(t) for (t,) in rows(store, "SELECT trade_id FROM trades"))
    assert stored == expected
    stale = [
        json.loads(d)
        for (d,) in rows(store, "SELECT detail FROM quality_events WHERE kind = 'stale'")
    ]
    assert len(stale) == status.stale
    assert all(d["reason"].startswith("no data for") for d in stale)
    kinds = {k for (k,) in rows(store, "SELECT kind FROM quality_events")}
    assert {"stale", "disconnect", "reconnect", "backfill"} <= kinds
    assert status.backfilled > 0  # trades that passed during the stall came from REST


def test_backoff_doubles_up_to_the_cap_with_jitter_and_reset_starts_over() -> None:
    backoff = Backoff(base=0.1, cap=2.0, rng=random.Random(42))
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0, 2.0]
    delays = [backoff.next_delay() for _ in ceilings]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[5:])) == 5  # jittered: capped waits are not in lockstep
    backoff.reset()
    assert 0.05 <= backoff.next_delay() <= 0.1
    assert 0.1 <= backoff.next_delay() <= 0.2


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    a = Backoff(rng=random.Random(7))
    b = Backoff(rng=random.Random(7))
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]


def test_backoff_stays_at_the_cap_after_thousands_of_failures() -> None:
    # A server down for hours means thousands of attempts; the wait must stay capped, not
    # overflow (an exception here would end the connection thread for good).
    backoff = Backoff(base=0.1, cap=5.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(5000)]
    assert all(2.5 <= d <= 5.0 for d in delays[6:])


class _Handler:
    """Counts what a connection reports; a refused connect must report nothing."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_connected(self, conn: int) -> list[str]:
        self.events.append("connected")
        return []

    def on_messages(self, conn: int, payloads: list[bytes], recv_ts: int) -> None:
        self.events.append("messages")

    def on_oversized(self, conn: int, prefix: bytes, recv_ts: int) -> None:
        self.events.append("oversized")

    def on_disconnected(self, conn: int, reason: str, *, stale: bool) -> None:
        self.events.append("disconnected")


def test_a_refused_connection_keeps_retrying_and_says_connect_failed() -> None:
    handler = _Handler()
    connection = Connection(
        1,
        f"ws://127.0.0.1:{free_port()}/ws",
        handler,
        heartbeat=lambda: None,
        heartbeat_interval=0,
        stale_after=3.0,
        backoff=Backoff(base=0.01, cap=0.05, rng=random.Random(1)),
        name="refused",
    )
    connection.start()
    try:
        assert wait_for(lambda: connection.backoff.attempt >= 5, 10)
        assert connection.last_error is not None
        assert connection.last_error.startswith("connect failed")
        assert not connection.connected
    finally:
        connection.stop()
    assert connection.join(2.0)
    assert handler.events == []  # never connected, so no disconnect either


def test_a_ping_is_answered_only_after_the_frames_before_it_are_handled(
    servers: list[ReplayServer],
) -> None:
    """What the replay server's barrier stands on. The frames and the ping go out in one
    write, so they reach the client in one read."""
    server = serve(servers, Script([b'{"n":1}', b'{"n":2}', ("ping", b"after-2")]))
    pong_first: list[bool] = []

    class Handler(_Handler):
        def on_connected(self, conn: int) -> list[str]:
            super().on_connected(conn)
            return ['{"op":"subscribe"}']  # the server's cue to send the script

        def on_messages(self, conn: int, payloads: list[bytes], recv_ts: int) -> None:
            # A pong sent before this call would arrive while we wait here.
            pong_first.append(wait_for(lambda: server.pongs() != [], 0.5))
            super().on_messages(conn, payloads, recv_ts)

    handler = Handler()
    connection = Connection(
        1,
        server.ws_url,
        handler,
        heartbeat=lambda: None,
        heartbeat_interval=0,
        stale_after=30.0,
        name="barrier",
    )
    connection.start()
    try:
        assert wait_for(lambda: server.pongs() == [b"after-2"], 10)
    finally:
        connection.stop()
    assert connection.join(10.0)
    assert handler.events == ["connected", "messages"] and pong_first == [False]


def test_stop_cuts_a_backoff_wait_short() -> None:
    connection = Connection(
        1,
        f"ws://127.0.0.1:{free_port()}/ws",
        _Handler(),
        heartbeat=lambda: None,
        heartbeat_interval=0,
        stale_after=3.0,
        backoff=Backoff(base=600.0, cap=600.0),
        name="patient",
    )
    connection.start()
    assert wait_for(lambda: connection.backoff.attempt == 1, 10)  # waiting 300-600 s now
    connection.stop()
    assert connection.join(30.0)


def test_a_feed_started_before_its_server_connects_once_it_listens_and_stops_clean(
    store: Store,
) -> None:
    port = free_port()
    feed = Feed(
        "sim",
        [SYM],
        store.writer,
        ws_url=f"ws://127.0.0.1:{port}/ws",
        rest_url=f"http://127.0.0.1:{port}",
    ).start()
    try:
        assert not wait_for(lambda: feed.status().connections > 0, 0.5)
        assert feed.status().trades == 0 and feed.status().running
        with SimServer(SimConfig(port=port, seed=9, symbols=(SYM,), rate=200)):
            assert wait_for(lambda: feed.status().trades > 0, 15)
            assert feed.status().reconnects == 0  # the first connection, not a reconnect
            feed.stop()
    finally:
        feed.stop()
    assert feed.threads_alive() == []
    assert not feed.status().running
    assert rows(store, "SELECT count(*) FROM trades")[0][0] == feed.status().trades


def test_status_says_why_nothing_arrives_when_the_server_refuses(tmp_path: Path) -> None:
    port = free_port()
    with Store.open(tmp_path / "refused.duckdb") as store:
        feed = Feed(
            "sim",
            ["BTC-USD"],
            store.writer,
            ws_url=f"ws://127.0.0.1:{port}/ws",
            rest_url=f"http://127.0.0.1:{port}",
        ).start()
        try:
            assert wait_for(lambda: feed.status().last_error is not None, 5)
            status = feed.status()
            assert status.connections == 0
            assert "connect failed" in (status.last_error or "")
        finally:
            feed.stop()
