"""Subscribers of a live feed: every applied event in apply order, never at the feed's expense."""

from __future__ import annotations

import gc
import logging
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import wait_for
from workbench import Workbench
from workbench.errors import UsageError
from workbench.events import Applied, Trade
from workbench.feeds import young_gc
from workbench.feeds.feed import Feed
from workbench.feeds.subscription import Subscription
from workbench.sim import SimConfig, SimServer
from workbench.store import Store

SYMS = ("BTC-USD", "ETH-USD")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "sub.duckdb")
    yield s
    s.close()


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    store.flush()
    return store.cursor().execute(sql).fetchall()


def stored_events(store: Store) -> Counter[str]:
    """Distinct ingest_seqs per event kind, as the recorder stored them."""
    counts: Counter[str] = Counter()
    for kind, table in (
        ("trade", "trades"),
        ("book", "book_deltas"),
        ("quote", "quotes"),
        ("top", "book_snapshots"),
        ("quality", "quality_events"),
    ):
        ((n,),) = rows(store, f"SELECT count(DISTINCT ingest_seq) FROM {table}")
        counts[kind] = n
    return +counts


def all_ingest_seqs(store: Store) -> list[int]:
    union = " UNION ".join(
        f"SELECT ingest_seq FROM {t}"
        for t in ("trades", "book_deltas", "quotes", "book_snapshots", "quality_events")
    )
    return [s for (s,) in rows(store, f"SELECT ingest_seq FROM ({union}) ORDER BY 1")]


def faulty_sim(seconds: float, **extra: Any) -> SimServer:
    config = SimConfig(
        port=0,
        seed=21,
        symbols=SYMS,
        rate=150,
        drop_every=1.2,
        gap=0.01,
        duplicate=0.01,
        malformed=0.01,
        duration=seconds,
        grace=30.0,
        **extra,
    )
    return SimServer(config)


def test_a_subscriber_receives_every_recorded_event_in_apply_order(store: Store) -> None:
    log: list[Applied] = []
    trades: queue.Queue[Applied] = queue.Queue()
    with faulty_sim(3.0) as sim:
        feed = Feed("sim", SYMS, store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url)
        feed.subscribe(log.append, name="everything")
        feed.subscribe(trades, kinds=["trade"], symbols=[SYMS[0]])
        feed.start()
        try:
            assert sim.halted.wait(20)
            assert wait_for(lambda: all(feed.status().book_valid.values()), 10)
        finally:
            feed.stop()
    status = feed.status()
    assert status.reconnects >= 1 and status.gaps >= 1 and status.duplicates >= 1
    assert status.subscribers == []  # stop closed them

    seqs = [e.ingest_seq for e in log]
    assert seqs == sorted(set(seqs)), "not in apply order, or an event delivered twice"
    assert seqs == all_ingest_seqs(store)
    assert +Counter(e.kind for e in log) == stored_events(store)
    resets = [e for e in log if e.kind == "book" and e.event.reset]
    resyncs = [e for e in log if e.kind == "quality" and e.event.kind == "resync"]
    assert len(resets) == len(resyncs) >= len(SYMS) + 1

    from_queue = [trades.get_nowait() for _ in range(trades.qsize())]
    expected = [e for e in log if e.kind == "trade" and e.event.symbol == SYMS[0]]
    assert from_queue == expected and expected
    assert all(isinstance(e.event, Trade) for e in from_queue)


def test_a_slow_subscriber_loses_its_backlog_not_the_recording(store: Store) -> None:
    released = threading.Event()

    def sleepy(event: Applied) -> None:
        released.wait(1.0)  # one second per event, like a strategy stuck on I/O

    fast: list[Applied] = []
    with faulty_sim(3.0) as sim:
        feed = Feed("sim", SYMS, store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url)
        slow = feed.subscribe(sleepy, maxsize=50, name="sleepy")
        feed.subscribe(fast.append, name="fast")
        feed.start()
        try:
            assert wait_for(lambda: feed.status().trades > 100, 10)
            # Rows keep reaching the file at the writer's pace, not the subscriber's.
            recorded = feed.status().trades
            assert wait_for(lambda: rows(store, "SELECT count(*) FROM trades")[0][0] >= recorded, 3)
            assert wait_for(lambda: slow.status().dropped > 0, 10)
            assert sim.halted.wait(20)
        finally:
            released.set()
            feed.stop()
    assert wait_for(lambda: not slow.status().alive, 5)
    final = slow.status()
    # Nothing vanished: each event was delivered or counted as dropped. At most the batch in
    # hand plus a full queue, and one per second of sleeping, were delivered.
    assert final.delivered + final.dropped == len(all_ingest_seqs(store))
    assert final.dropped > 0 and final.delivered <= 2 * 50 + 10
    overflow = rows(store, "SELECT detail FROM quality_events WHERE kind = 'subscriber_overflow'")
    assert overflow and all('"subscriber":"sleepy"' in d for (d,) in overflow)
    assert [e.ingest_seq for e in fast] == all_ingest_seqs(store)  # the other one lost nothing


def test_a_raising_subscriber_is_reported_and_the_feed_carries_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Applied] = []

    def fragile(event: Applied) -> None:
        seen.append(event)
        if len(seen) % 3 == 0:
            raise ValueError(f"strategy bug at {event.ingest_seq}")

    with faulty_sim(1.5) as sim:
        feed = Feed("sim", SYMS, store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url)
        sub = feed.subscribe(fragile, name="fragile")
        with caplog.at_level(logging.ERROR, logger="workbench.feeds.subscription"):
            feed.start()
            try:
                assert wait_for(lambda: sub.status().errors >= 5, 10)
                assert sim.halted.wait(20)
                status = feed.status()
            finally:
                feed.stop()
    assert status.running and status.thread_errors == 0
    (reported,) = status.subscribers
    assert reported.name == "fragile" and reported.errors >= 5
    assert reported.last_error is not None and "ValueError: strategy bug" in reported.last_error
    assert "subscriber fragile" in status.summary()
    assert any("subscriber fragile raised" in r.getMessage() for r in caplog.records)
    assert len(seen) == sub.status().delivered == len(all_ingest_seqs(store))


def test_unsubscribing_ends_delivery_and_mistakes_are_usage_errors(store: Store) -> None:
    with faulty_sim(30.0) as sim:
        wb = Workbench(store)
        with pytest.raises(UsageError, match="name the feed"):
            wb.subscribe(print)
        feed = wb.start_feed("sim", SYMS, ws_url=sim.ws_url, rest_url=sim.rest_url)
        try:
            got: list[Applied] = []
            sub = wb.subscribe(got.append, kinds=["book"], symbols=[SYMS[1]])
            assert wait_for(lambda: len(got) > 5, 10)
            assert {(e.kind, e.event.symbol) for e in got} == {("book", SYMS[1])}
            sub.close()
            assert not sub.status().alive and feed.status().subscribers == []
            count, messages = len(got), feed.status().messages
            assert wait_for(lambda: feed.status().messages > messages + 20, 10)
            assert len(got) == count  # the feed carries on, delivering to no one

            with pytest.raises(UsageError, match="unknown event kinds"):
                feed.subscribe(print, kinds=["trades"])
            with pytest.raises(UsageError, match="does not record"):
                feed.subscribe(print, symbols=["DOGE-USD"])
            with pytest.raises(UsageError, match="callable or a queue"):
                feed.subscribe(42)  # type: ignore[arg-type]
        finally:
            wb.stop_all()
        with pytest.raises(UsageError, match="stopped"):
            feed.subscribe(print)


@pytest.fixture
def default_gc() -> Iterator[tuple[int, int, int]]:
    """Python's default thresholds for the test, whatever the process had before."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_subscribers_hold_a_higher_young_gc_threshold_and_the_last_one_gives_it_back(
    store: Store, default_gc: tuple[int, int, int]
) -> None:
    """Queued events outlive a 700-allocation young generation (see young_gc); the process's
    own GC settings come back once no subscription is open, across feeds."""
    with faulty_sim(30.0) as sim:
        wb = Workbench(store)
        feed = wb.start_feed("sim", SYMS, ws_url=sim.ws_url, rest_url=sim.rest_url)
        try:
            first = wb.subscribe(lambda e: None)
            assert gc.get_threshold() == (young_gc.GEN0_THRESHOLD, 10, 10)
            other = Subscription(lambda e: None, name="elsewhere").start()  # another feed's
            first.close()
            assert gc.get_threshold()[0] == young_gc.GEN0_THRESHOLD  # one still open
            other.close()
            other.close()  # closing twice gives back nothing twice
            assert gc.get_threshold() == default_gc

            wb.subscribe(lambda e: None)
        finally:
            wb.stop_all()  # stopping the feed closes its subscriptions
    assert feed.status().subscribers == []
    assert gc.get_threshold() == default_gc


def test_the_young_gc_threshold_is_left_alone_when_someone_else_set_it(
    default_gc: tuple[int, int, int],
) -> None:
    sub = Subscription(lambda e: None, name="a").start()
    gc.set_threshold(2_000, 10, 10)  # the user's choice while subscribed: it stands
    sub.close()
    assert gc.get_threshold() == (2_000, 10, 10)

    gc.set_threshold(50_000, 5, 5)  # already higher: not lowered, not touched
    sub = Subscription(lambda e: None, name="b").start()
    assert gc.get_threshold() == (50_000, 5, 5)
    sub.close()
    assert gc.get_threshold() == (50_000, 5, 5)

    gc.set_threshold(0, 10, 10)  # threshold 0: automatic collection is off, and stays off
    sub = Subscription(lambda e: None, name="c").start()
    assert gc.get_threshold() == (0, 10, 10)
    sub.close()
