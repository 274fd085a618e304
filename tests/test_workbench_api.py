"""The Python API a notebook uses, against the in-process simulator and a real DuckDB file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e import query, wait_for
from workbench.errors import StoreError, UsageError
from workbench.feeds.status import FeedStatus
from workbench.sim.server import SimConfig, SimServer
from workbench.store import TABLES
from workbench.workbench import Workbench

SYM = "BTC-USD"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(port=0, seed=21, symbols=(SYM,), rate=200)) as server:
        yield server


@pytest.fixture
def wb(tmp_path: Path) -> Iterator[Workbench]:
    bench = Workbench.open(tmp_path / "wb.duckdb")
    try:
        yield bench
    finally:
        bench.close()


def only_status(wb: Workbench) -> FeedStatus:
    (status,) = wb.status()
    return status


def stored_trades(wb: Workbench) -> int:
    frame = wb.sql("SELECT count(*) AS n FROM trades WHERE symbol = ?", [SYM])
    assert isinstance(frame, pd.DataFrame)
    return int(frame["n"].iloc[0])


def workbench_threads(since: set[threading.Thread]) -> list[str]:
    return [
        t.name
        for t in set(threading.enumerate()) - since
        if t.name.startswith(("wb-", "workbench-"))
    ]


def test_status_shows_a_healthy_live_feed(wb: Workbench, sim: SimServer) -> None:
    feed = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)

    def healthy() -> bool:
        s = only_status(wb)
        return (
            s.trades > 0
            and s.msgs_per_sec > 0  # needs one completed second of traffic
            and s.lag_ms is not None
            and s.last_message_age is not None
            and s.connections == 1
            and all(s.book_valid.values())
        )

    assert wait_for(healthy, 15)
    status = only_status(wb)
    assert status.name == feed.name == "sim:BTC-USD"
    assert status.exchange == "sim" and status.symbols == [SYM]
    assert status.running
    assert status.book_valid == {SYM: True}
    assert status.last_message_age is not None and status.last_message_age >= 0
    assert status.messages >= status.trades
    assert status.gaps == status.quarantined == status.reconnects == 0
    assert status.last_error is None


def test_sql_reads_committed_rows_while_the_feed_keeps_recording(
    wb: Workbench, sim: SimServer
) -> None:
    wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    assert wait_for(lambda: stored_trades(wb) > 0, 15)
    seen = stored_trades(wb)
    assert wait_for(lambda: stored_trades(wb) > seen, 15)  # querying did not stall ingest
    assert only_status(wb).running
    bad_symbol = wb.sql("SELECT count(*) AS n FROM trades WHERE symbol = ?", ["x' OR 1=1 --"])
    assert int(bad_symbol["n"].iloc[0]) == 0  # the value was bound, not spliced into the text


def test_a_second_feed_with_a_running_feeds_name_is_refused_until_it_stops(
    wb: Workbench, sim: SimServer
) -> None:
    first = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    assert wait_for(lambda: first.status().trades > 0, 15)
    with pytest.raises(UsageError, match="'sim:BTC-USD' is already running"):
        wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    assert wb.feed("sim:BTC-USD") is first and first.running
    assert only_status(wb).connections == 1

    wb.stop_feed("sim:BTC-USD")
    again = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    assert again is not first and wb.feed("sim:BTC-USD") is again
    assert wait_for(lambda: again.status().trades > 0, 15)


def test_an_unknown_feed_name_is_a_usage_error_naming_the_known_feeds(
    wb: Workbench, sim: SimServer
) -> None:
    with pytest.raises(UsageError, match=r"no feed named 'nope' \(feeds: none\)"):
        wb.feed("nope")
    wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url, name="twin")
    with pytest.raises(UsageError, match=r"no feed named 'nope' \(feeds: sim:BTC-USD, twin\)"):
        wb.feed("nope")
    with pytest.raises(UsageError, match="no feed named 'nope'"):
        wb.stop_feed("nope")


def test_close_stops_every_thread_and_keeps_the_data(tmp_path: Path, sim: SimServer) -> None:
    before = set(threading.enumerate())
    db = tmp_path / "closed.duckdb"
    wb = Workbench.open(db)
    wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    wb.start_feed(
        "sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url, name="twin", redundant=True
    )
    assert wait_for(lambda: sum(s.connections for s in wb.status()) == 3, 15)
    assert wait_for(lambda: all(s.trades > 0 for s in wb.status()), 15)
    assert workbench_threads(before)  # feeds and the store writer are running
    wb.close()
    assert workbench_threads(before) == []
    assert all(not s.running for s in wb.status())
    with pytest.raises(StoreError, match="closed"):
        wb.sql("SELECT 1")
    (trades,) = query(db, "SELECT count(*) FROM trades")[0]
    assert trades > 0


def test_recorded_trades_clean_and_resample_in_one_line_each(wb: Workbench, sim: SimServer) -> None:
    feed = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    assert wait_for(lambda: only_status(wb).trades >= 200, 20)
    feed.stop()

    report = wb.clean()
    total = stored_trades(wb)
    assert report.rows_in == total
    kept = wb.sql("SELECT count(*) AS n FROM clean_trades")["n"].iloc[0]
    assert kept == report.rows_out <= total

    assert wb.update_bars("1s") > 0
    bars = wb.bars(SYM, "1s")
    assert int(bars["trades"].sum()) == total
    assert bars["ts"].is_monotonic_increasing
    assert ((bars["low"] <= bars["vwap"]) & (bars["vwap"] <= bars["high"])).all()
    assert wb.update_bars("1s") <= 1  # nothing new: at most the last bucket is rewritten
    with pytest.raises(UsageError, match="7x"):
        wb.bars(SYM, "7x")


def test_a_second_simulator_session_into_the_same_database_keeps_all_its_trades(
    wb: Workbench,
) -> None:
    # same seed both times: only the trade ids tell the sessions apart
    recorded = record_one_sim_session(wb) + record_one_sim_session(wb)
    wb.flush()
    assert stored_trades(wb) == recorded


def record_one_sim_session(wb: Workbench) -> int:
    with SimServer(SimConfig(port=0, seed=21, symbols=(SYM,), rate=200)) as server:
        feed = wb.start_feed("sim", [SYM], ws_url=server.ws_url, rest_url=server.rest_url)
        assert wait_for(lambda: feed.status().trades >= 20, 10)
        feed.stop()
    return feed.status().trades


def test_a_table_dropped_during_recording_stops_the_feed_with_the_error(
    wb: Workbench, sim: SimServer
) -> None:
    feed = wb.start_feed("sim", [SYM], ws_url=sim.ws_url, rest_url=sim.rest_url)
    assert wait_for(lambda: stored_trades(wb) > 0, 15)
    wb.sql("DROP TABLE book_deltas")  # a user's statement in the same process

    assert wait_for(lambda: only_status(wb).failed is not None, 10)
    status = only_status(wb)
    assert status.failed is not None and "cannot write book_deltas" in status.failed
    assert not status.running and not feed.running
    assert "FAILED: store writer cannot write book_deltas" in status.summary()
    assert wait_for(lambda: not feed.threads_alive(), 5), feed.threads_alive()
    held = wb.store.writer.stats().pending_rows
    assert held > 0 and wb.store.writer.stats().rejected["book_deltas"] == 0  # not dropped
    wb.sql(TABLES["book_deltas"].ddl)  # the user puts the table back: the held rows go in
    wb.flush()
    assert wb.sql("SELECT count(*) AS n FROM book_deltas")["n"][0] >= held
