"""Supervised threads (workbench/threads.py) and what each owner does with a thread's error:
real feeds against the embedded simulator, a real DuckDB file, real threads."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest

from tests.e2e import wait_for
from tests.helpers.threads import leaked_threads
from workbench.errors import StoreError
from workbench.feeds.feed import Feed, RowSink
from workbench.notebook.pump import UIPump
from workbench.notebook.widgets.status import status_html
from workbench.sim import SimConfig, SimServer
from workbench.store import Store
from workbench.store.schema import TABLES
from workbench.store.writer import StoreWriter
from workbench.threads import SupervisedThread, ThreadError, join_all, restart_delay
from workbench.venues.sim import SimProtocol

SYM = "BTC-USD"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(symbols=(SYM,), rate=200, seed=7)) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "threads.duckdb") as s:
        yield s


def stored_trades(store: Store) -> int:
    store.flush()
    with store.cursor() as cur:
        row = cur.execute("SELECT count(*) FROM trades").fetchone()
    return int(row[0]) if row else 0


def thread_errors(store: Store) -> list[dict[str, Any]]:
    store.flush()
    with store.cursor() as cur:
        rows = cur.execute(
            "SELECT detail FROM quality_events WHERE kind = 'thread_error' ORDER BY ts"
        ).fetchall()
    return [json.loads(detail) for (detail,) in rows]


class HealthCheckFailsOnce:
    """The store's writer behind a sink whose health check (``fault``, read by the feed's
    maintenance thread every cycle) raises once, after ``after`` checks: a bug in the
    maintenance thread's work that loses no row (every ``submit`` already went through)."""

    def __init__(self, writer: StoreWriter, after: int) -> None:
        self.writer = writer
        self.ingest_seqs = writer.ingest_seqs
        self.checks = 0
        self.after = after

    def submit(self, table: str, columns: dict[str, Any]) -> None:
        self.writer.submit(table, columns)

    def wait_for_room(self, timeout: float) -> bool:
        return self.writer.wait_for_room(timeout)

    @property
    def fault(self) -> str | None:
        self.checks += 1
        if self.checks == self.after:
            raise RuntimeError("health check exploded")
        return self.writer.fault


def test_a_maintenance_thread_error_is_in_status_and_quality_events_and_recording_goes_on(
    sim: SimServer, store: Store
) -> None:
    sink: RowSink = HealthCheckFailsOnce(store.writer, after=20)  # ~1 s in: trades flow
    feed = Feed("sim", [SYM], sink, ws_url=sim.ws_url, rest_url=sim.rest_url).start()
    try:
        assert wait_for(lambda: feed.status().thread_errors == 1, 10)
        status = feed.status()
        assert status.running and status.failed is None
        assert status.last_thread_error is not None
        assert f"wb-{feed.name}-maint" in status.last_thread_error
        assert "RuntimeError: health check exploded" in status.last_thread_error
        assert "1 thread errors" in status.summary()
        shown = status_html([status])  # the %wb feeds widget's table
        assert 'class="wb-thread-errors"' in shown and "health check exploded" in shown
        at_error = stored_trades(store)
        assert at_error > 0
        assert wait_for(lambda: stored_trades(store) > at_error + 20, 10), "recording stopped"
        (detail,) = thread_errors(store)
        assert detail == {
            "thread": f"wb-{feed.name}-maint",
            "type": "RuntimeError",
            "message": "health check exploded",
            "count": 1,
            "action": "restart",
        }
    finally:
        feed.stop()
    assert feed.status().lingering_threads == []


class SubscribeFailsOnce(SimProtocol):
    """A venue whose subscribe builder has a bug the first time it is called."""

    failed: ClassVar[threading.Event]

    def subscribe_messages(self) -> list[str]:
        if not self.failed.is_set():
            self.failed.set()
            raise KeyError("no such channel")
        return super().subscribe_messages()


def test_a_connection_thread_error_is_reported_and_the_connection_comes_back(
    sim: SimServer, store: Store
) -> None:
    venue = type("SubscribeFailsOnce", (SubscribeFailsOnce,), {"failed": threading.Event()})
    feed = Feed(venue, [SYM], store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url).start()
    try:
        assert wait_for(lambda: stored_trades(store) > 0, 10), feed.status().summary()
        status = feed.status()
        assert status.thread_errors == 1 and status.subscribed == {SYM: True}
        (detail,) = thread_errors(store)
        assert detail["thread"] == f"wb-{feed.name}-conn1"
        assert (detail["type"], detail["action"]) == ("KeyError", "restart")
    finally:
        feed.stop()


def test_a_writer_thread_failure_marks_the_writer_failed_and_stops_the_feed(
    sim: SimServer,
) -> None:
    closed = duckdb.connect()
    closed.close()  # its cursor() raises: the writer thread's work fails at once
    writer = StoreWriter(closed).start()
    assert wait_for(lambda: writer.fault is not None, 5)
    assert writer.fault is not None and "store writer thread failed" in writer.fault
    assert wait_for(lambda: not writer.alive, 5), "a failed writer is not restarted"
    with pytest.raises(StoreError, match="stopped"):
        writer.submit("quality_events", {c: [None] for c in TABLES["quality_events"].column_names})
    feed = Feed("sim", [SYM], writer, ws_url=sim.ws_url, rest_url=sim.rest_url).start()
    try:
        assert wait_for(lambda: feed.status().failed is not None, 10)
        status = feed.status()
        assert not status.running
        assert status.failed is not None
        assert "thread workbench-store-writer failed: ConnectionException" in status.failed
    finally:
        feed.stop()
        writer.stop()


def test_a_supervised_thread_restarts_with_a_doubling_capped_backoff() -> None:
    errors: list[ThreadError] = []
    runs = 0

    def work() -> None:
        nonlocal runs
        runs += 1
        if runs <= 5:
            raise ValueError(f"bad run {runs}")

    thread = SupervisedThread(
        work, name="test-restarting", restart=True, on_error=errors.append, base=0.001, cap=0.004
    )
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and runs == 6
    assert [e.delay for e in errors] == [0.001, 0.002, 0.004, 0.004, 0.004]
    assert [e.count for e in errors] == [1, 2, 3, 4, 5] and thread.errors == 5
    assert {e.action for e in errors} == {"restart"}
    assert str(errors[-1]) == (
        "thread test-restarting failed: ValueError: bad run 5 (restarting in 0.004s)"
    )


def test_work_that_fails_every_time_is_given_up_after_so_many_failures_in_a_row() -> None:
    errors: list[ThreadError] = []

    def work() -> None:
        raise ValueError("always")

    thread = SupervisedThread(
        work, name="test-broken", restart=True, on_error=errors.append, base=0.001, give_up_after=3
    )
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert [(e.count, e.action) for e in errors] == [(1, "restart"), (2, "restart"), (3, "fail")]
    assert str(errors[-1]).endswith("ValueError: always (not restarted)")


def test_the_backoff_caps_and_survives_huge_failure_counts() -> None:
    assert [restart_delay(n, 0.1, 5.0) for n in (1, 2, 3, 6, 7, 10_000)] == [
        0.1,
        0.2,
        0.4,
        3.2,
        5.0,
        5.0,
    ]


def test_a_failure_is_not_restarted_once_the_owner_stops_or_when_the_owner_says_fail() -> None:
    stop = threading.Event()
    stop.set()
    errors: list[ThreadError] = []

    def work() -> None:
        raise OSError("gone")

    for restart in (True, False):
        thread = SupervisedThread(
            work, name=f"test-{restart}", restart=restart, on_error=errors.append, stop=stop
        )
        thread.start()
        thread.join(5)
        assert not thread.is_alive()
    assert [(e.action, e.delay) for e in errors] == [("fail", None), ("fail", None)]


def test_a_failing_error_callback_does_not_end_a_restarting_thread() -> None:
    runs = 0

    def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ValueError("first")

    def report(error: ThreadError) -> None:
        raise RuntimeError("the report broke too")

    thread = SupervisedThread(work, name="test-cb", restart=True, on_error=report, base=0.001)
    thread.start()
    thread.join(5)
    assert runs == 2 and thread.errors == 1


def test_join_all_names_the_threads_still_alive_at_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="test-stuck")
    quick = threading.Thread(target=lambda: None, name="test-quick")
    never_started = threading.Thread(target=lambda: None, name="test-never")
    stuck.start()
    quick.start()
    try:
        with caplog.at_level(logging.WARNING, logger="workbench.threads"):
            alive = join_all([quick, stuck, never_started], 0.05, owner="the test")
        assert alive == ["test-stuck"]
        assert "the test: threads still alive 0.05s after stop: test-stuck" in caplog.text
    finally:
        release.set()
        stuck.join(5)


class HeartbeatBlocks(SimProtocol):
    """A venue whose heartbeat builder hangs until released: its connection thread cannot
    end when the feed stops."""

    heartbeat_interval: ClassVar[float] = 0.05
    release: ClassVar[threading.Event]
    blocked: ClassVar[threading.Event]

    def heartbeat_message(self) -> str:
        self.blocked.set()
        self.release.wait()
        return super().heartbeat_message()


def test_a_feed_thread_that_outlives_stop_is_named_in_status_and_a_warning(
    sim: SimServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    release, blocked = threading.Event(), threading.Event()
    venue = type("Blocks", (HeartbeatBlocks,), {"release": release, "blocked": blocked})
    feed = Feed(venue, [SYM], store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url).start()
    try:
        assert blocked.wait(10)
        with caplog.at_level(logging.WARNING, logger="workbench.threads"):
            feed.stop(timeout=0.2)
        conn = f"wb-{feed.name}-conn1"
        status = feed.status()
        assert status.lingering_threads == [conn]
        assert f"threads alive after stop: {conn}" in status.summary()
        assert f"still alive after stop: {conn}" in status_html([status])
        assert f"feed {feed.name}: threads still alive 0.2s after stop: {conn}" in caplog.text
    finally:
        release.set()
        assert wait_for(lambda: not feed.threads_alive(), 5)


class ClockFailsOnce:
    """Real time, except that reading it fails once: a bug in the pump's own loop."""

    def __init__(self) -> None:
        self.failed = False

    def now(self) -> float:
        if not self.failed:
            self.failed = True
            raise ArithmeticError("clock broke")
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float) -> None:
        stop.wait(seconds)


def test_a_pump_loop_error_is_counted_shown_and_the_pump_renders_on() -> None:
    shown: list[Exception] = []
    renders = threading.Semaphore(0)
    pump = UIPump(
        renders.release, rate=200, name="test", on_error=shown.append, clock=ClockFailsOnce()
    )
    pump.start()
    try:
        assert renders.acquire(timeout=10), "the pump did not restart"
        stats = pump.stats
        assert stats.thread_errors == 1 and stats.errors == 0
        assert stats.last_error is not None and "ArithmeticError: clock broke" in stats.last_error
        (error,) = shown
        assert isinstance(error, ThreadError) and error.thread == "wb-pump-test"
    finally:
        pump.stop()
    assert not pump.alive


def test_the_leak_check_names_a_thread_left_running_and_waits_for_one_that_is_ending() -> None:
    before = set(threading.enumerate())
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="test-leaked", daemon=True)
    ending = threading.Thread(target=release.wait, args=(0.01,), name="test-ending")
    stuck.start()
    ending.start()
    try:
        assert leaked_threads(before, wait=0.5) == ["test-leaked"]
    finally:
        release.set()
        stuck.join(5)
    assert leaked_threads(before, wait=0.5) == []
