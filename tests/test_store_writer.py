"""StoreWriter against real DuckDB files: batching, uniqueness, concurrency and failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from workbench.errors import StoreError, UsageError
from workbench.store import TABLES, Store, TableBatch
from workbench.store import writer as writer_module

T0 = 1_763_712_000_000_000  # 2025-11-21 08:00:00 UTC in µs


def trades(ids: range | list[int], *, symbol: str = "BTC-USD") -> dict[str, list[Any]]:
    return {
        "exchange": ["sim"] * len(ids),
        "symbol": [symbol] * len(ids),
        "ts": [T0 + i for i in ids],
        "recv_ts": [T0 + i + 500 for i in ids],
        "price": [30_000.0 + i for i in ids],
        "size": [0.5] * len(ids),
        "side": ["buy" if i % 2 else "sell" for i in ids],
        "trade_id": [str(i) for i in ids],
    }


def deltas(n: int, *, start: int = 0) -> dict[str, list[Any]]:
    seqs = range(start, start + n)
    return {
        "exchange": ["sim"] * n,
        "symbol": ["BTC-USD"] * n,
        "ts": [T0 + s for s in seqs],
        "recv_ts": [T0 + s for s in seqs],
        "seq": list(seqs),
        "side": ["bid"] * n,
        "price": [100.0] * n,
        "size": [1.0] * n,
    }


def quality(kind: str) -> dict[str, list[Any]]:
    return {
        "exchange": ["sim"],
        "symbol": ["BTC-USD"],
        "ts": [T0],
        "kind": [kind],
        "detail": ["{}"],
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.duckdb") as opened:
        yield opened


def test_a_trade_delivered_twice_in_one_batch_or_across_batches_is_stored_once(
    store: Store,
) -> None:
    store.writer.submit("trades", trades([1, 2, 2, 3]))
    store.writer.submit("trades", trades([3, 4]))
    store.writer.flush()
    store.writer.submit("trades", trades([1, 4, 5]))
    store.writer.submit("trades", trades([1], symbol="ETH-USD"))
    store.writer.flush()

    stored = store.sql("SELECT symbol, trade_id FROM trades ORDER BY symbol, trade_id")
    assert list(stored.itertuples(index=False, name=None)) == [
        ("BTC-USD", "1"),
        ("BTC-USD", "2"),
        ("BTC-USD", "3"),
        ("BTC-USD", "4"),
        ("BTC-USD", "5"),
        ("ETH-USD", "1"),
    ]
    stats = store.writer.stats()
    assert stats.rows["trades"] == 6
    assert stats.duplicates["trades"] == 4


def test_timestamps_and_values_round_trip_exactly(store: Store) -> None:
    store.writer.submit("trades", trades([7]))
    store.writer.flush()
    row = store.cursor().execute(
        "SELECT epoch_us(ts), epoch_us(recv_ts), price, size, side FROM trades"
    )
    assert row.fetchall() == [(T0 + 7, T0 + 507, 30_007.0, 0.5, "buy")]


def test_numpy_and_arrow_columns_are_accepted_like_lists(store: Store) -> None:
    n = 4
    store.writer.submit(
        "book_snapshots",
        {
            "exchange": pa.array(["sim"] * n),
            "symbol": np.array(["ETH-USD"] * n, dtype=object),
            "ts": np.full(n, T0, dtype=np.int64),
            "recv_ts": np.full(n, T0, dtype="datetime64[us]"),
            "seq": np.arange(n),
            "valid": np.ones(n, dtype=bool),
            "side": ["bid", "bid", "ask", "ask"],
            "level": np.array([0, 1, 0, 1], dtype=np.int64),
            "price": np.array([99.0, 98.0, 101.0, 102.0]),
            "size": pa.array([1, 2, 3, 4], type=pa.int64()),
        },
    )
    store.writer.flush()
    frame = store.sql("SELECT epoch_us(ts) AS ts, level, size FROM book_snapshots ORDER BY seq")
    assert frame["ts"].tolist() == [T0] * n
    assert frame["level"].tolist() == [0, 1, 0, 1]
    assert frame["size"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_one_commit_covers_every_table_submitted_in_a_cycle(store: Store) -> None:
    committed: list[dict[str, int]] = []
    inside = threading.Event()
    release = threading.Event()

    def hold_first_cycle(counts: dict[str, int]) -> None:
        committed.append(counts)
        inside.set()
        release.wait()

    writer = store.start_writer(on_commit=hold_first_cycle)
    writer.submit("trades", trades([0]))
    inside.wait()  # the writer thread is parked in the callback: the next three queue up
    writer.submit("trades", trades(range(1, 11)))
    writer.submit("book_deltas", deltas(20))
    writer.submit("quality_events", quality("gap"))
    release.set()
    writer.flush()

    assert committed == [
        {"trades": 1},
        {"trades": 10, "book_deltas": 20, "quality_events": 1},
    ]
    assert writer.stats().commits == 2
    assert writer.stats().batches == 4


def test_a_backlog_is_committed_in_several_ordered_transactions(store: Store) -> None:
    committed: list[dict[str, int]] = []
    inside = threading.Event()
    release = threading.Event()

    def hold_first_cycle(counts: dict[str, int]) -> None:
        committed.append(counts)
        inside.set()
        release.wait()

    # Converting one 50,000-row batch takes far longer than the 1 ms conversion budget, so
    # each cycle takes exactly one batch of the backlog.
    writer = store.start_writer(commit_interval=0.001, on_commit=hold_first_cycle)
    writer.submit("book_deltas", deltas(1))
    inside.wait()
    for i in range(4):
        writer.submit("book_deltas", deltas(50_000, start=1 + i * 50_000))
    release.set()
    writer.flush()

    assert committed == [{"book_deltas": 1}] + [{"book_deltas": 50_000}] * 4
    seqs = store.sql("SELECT seq FROM book_deltas ORDER BY rowid")["seq"].tolist()
    assert seqs == list(range(200_001))


def test_a_reader_cursor_in_another_thread_sees_every_commit_while_the_writer_runs(
    store: Store,
) -> None:
    writer = store.writer
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        with store.cursor() as cursor:
            while not done.is_set():
                row = cursor.execute("SELECT count(*), max(ts) FROM book_deltas").fetchone()
                seen.append(row[0] if row else -1)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 21):
            writer.submit("book_deltas", deltas(1_000, start=i * 1_000))
            writer.flush()
            while reader.is_alive() and (not seen or seen[-1] < i * 1_000):
                time.sleep(0.001)
    finally:
        done.set()
        reader.join()

    assert seen == sorted(seen)
    assert {i * 1_000 for i in range(1, 21)} <= set(seen)


def test_flush_returns_only_after_everything_submitted_before_it_is_committed(
    store: Store,
) -> None:
    writer = store.start_writer(commit_interval=0.1)
    for i in range(5):
        writer.submit("book_deltas", deltas(100, start=i * 100))
    writer.flush()
    assert store.table_counts()["book_deltas"] == 500
    assert writer.stats().queue_depth == 0


def test_stop_commits_what_is_queued_and_leaves_no_thread_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = Store.open(tmp_path / "s.duckdb")
    writer = store.start_writer(commit_interval=0.1)
    writer.submit("book_deltas", deltas(1_000))

    writer.stop()

    assert set(threading.enumerate()) == before
    assert store.table_counts()["book_deltas"] == 1_000
    writer.stop()
    with pytest.raises(StoreError, match="stopped"):
        writer.submit("book_deltas", deltas(1))
    store.close()


def test_store_close_stops_the_writer_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = Store.open(tmp_path / "s.duckdb")
    store.writer.submit("trades", trades(range(3)))
    store.close()
    assert set(threading.enumerate()) == before
    with Store.open(tmp_path / "s.duckdb") as reopened:
        assert reopened.table_counts()["trades"] == 3


def test_shape_errors_are_raised_by_submit_in_the_callers_thread(store: Store) -> None:
    bad_column = trades([1])
    bad_column["tradeid"] = bad_column.pop("trade_id")
    with pytest.raises(UsageError, match=r"missing \['trade_id'\], unexpected \['tradeid'\]"):
        store.writer.submit("trades", bad_column)
    ragged = trades([1, 2])
    ragged["price"] = [1.0]
    with pytest.raises(UsageError, match="different lengths"):
        store.writer.submit("trades", ragged)
    with pytest.raises(UsageError, match="unknown table"):
        store.writer.submit("trade", trades([1]))


def test_a_batch_that_cannot_convert_is_rejected_alone_and_reported_once_by_flush(
    store: Store,
) -> None:
    writer = store.writer
    before = set(threading.enumerate())
    bad = deltas(3)
    bad["price"] = [1.0, "not a price", 3.0]
    writer.submit("book_deltas", deltas(5))
    writer.submit("book_deltas", bad)
    writer.submit("trades", trades([1]))

    with pytest.raises(StoreError, match="rejected 3 book_deltas rows") as raised:
        writer.flush()
    assert isinstance(raised.value.__cause__, pa.ArrowException)

    writer.submit("book_deltas", deltas(2, start=100))
    writer.flush()
    assert writer.alive
    assert set(threading.enumerate()) == before
    counts = store.table_counts()
    assert (counts["trades"], counts["book_deltas"]) == (1, 7)
    assert sum(counts.values()) == 8
    stats = writer.stats()
    assert stats.rejected["book_deltas"] == 3
    assert stats.last_error is not None and "not a price" in stats.last_error


def test_rows_duckdb_refuses_are_rejected_without_losing_the_rest_of_the_cycle(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    with duckdb.connect(path) as con:  # a stricter table than ours: negative sizes violate it
        con.execute("DROP TABLE book_deltas")
        con.execute(
            "CREATE TABLE book_deltas (exchange VARCHAR, symbol VARCHAR, ts TIMESTAMP, "
            "recv_ts TIMESTAMP, seq BIGINT, kind VARCHAR, side VARCHAR, price DOUBLE, "
            "size DOUBLE CHECK (size >= 0), ingest_seq BIGINT)"
        )
    with Store.open(path) as store:
        writer = store.start_writer(commit_interval=0.1)
        poison = deltas(2, start=10)
        poison["size"] = [1.0, -1.0]
        writer.submit("book_deltas", deltas(3))
        writer.submit("book_deltas", poison)
        writer.submit("quality_events", quality("gap"))

        with pytest.raises(StoreError, match="rejected 2 book_deltas rows"):
            writer.flush()

        assert store.table_counts()["book_deltas"] == 3
        assert store.table_counts()["quality_events"] == 1
        stats = writer.stats()
        assert stats.failed_commits == 1
        assert stats.pending_rows == 0


def test_when_the_database_refuses_everything_rows_are_kept_and_retried(store: Store) -> None:
    writer = store.writer
    with store.cursor() as cursor:
        cursor.execute("ALTER TABLE quality_events RENAME TO quality_events_away")
    writer.submit("quality_events", quality("stale"))

    with pytest.raises(StoreError, match="did not commit 1 submissions") as raised:
        writer.flush(timeout=0.3)
    assert isinstance(raised.value.__cause__, duckdb.CatalogException)
    assert "quality_events" in str(raised.value)
    assert writer.stats().pending_rows == 1
    assert writer.stats().rejected["quality_events"] == 0

    with store.cursor() as cursor:
        cursor.execute("ALTER TABLE quality_events_away RENAME TO quality_events")
    writer.flush()
    assert store.sql("SELECT kind FROM quality_events")["kind"].tolist() == ["stale"]
    assert writer.stats().pending_rows == 0


def test_stop_reports_rows_the_database_would_not_take(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.duckdb")
    with store.cursor() as cursor:
        cursor.execute("ALTER TABLE quarantine RENAME TO quarantine_away")
    store.writer.submit(
        "quarantine",
        {"exchange": ["sim"], "recv_ts": [T0], "reason": ["x"], "raw": ["{"], "size": [1]},
    )
    with pytest.raises(StoreError, match="rejected 1 quarantine rows: not committed before stop"):
        store.writer.stop()
    assert not store.writer.alive
    assert store.writer.stats().rejected["quarantine"] == 1
    store.writer.stop()
    store.close()


def test_a_failing_on_commit_callback_does_not_stop_the_writer(store: Store) -> None:
    calls: list[dict[str, int]] = []

    def explode(counts: dict[str, int]) -> None:
        calls.append(counts)
        raise RuntimeError("printer on fire")

    writer = store.start_writer(on_commit=explode)
    writer.submit("trades", trades([1]))
    writer.flush()
    writer.submit("trades", trades([2]))
    writer.flush()
    assert calls == [{"trades": 1}, {"trades": 1}]
    assert writer.alive


def test_flush_from_the_on_commit_callback_is_refused_instead_of_deadlocking(
    store: Store,
) -> None:
    errors: list[Exception] = []

    def flush_inside(_: dict[str, int]) -> None:
        try:
            writer.flush()
        except UsageError as exc:
            errors.append(exc)

    writer = store.start_writer(on_commit=flush_inside)
    writer.submit("trades", trades([1]))
    writer.flush()
    assert len(errors) == 1


def test_feed_style_batches_flow_from_table_batch_to_the_table(store: Store) -> None:
    batch = TableBatch("quarantine")
    exchange, recv_ts, reason, raw, size = batch.appenders()
    for i in range(3):
        exchange("sim")
        recv_ts(T0 + i)
        reason("invalid JSON")
        raw("{oops")
        size(5)
        store.writer.submit(batch.table.name, batch.take())
    store.writer.flush()
    assert store.table_counts()["quarantine"] == 3


def test_a_table_dropped_under_the_writer_holds_its_rows_and_says_so_in_fault(
    store: Store,
) -> None:
    writer = store.writer
    with store.cursor() as cursor:
        cursor.execute("DROP TABLE book_deltas")  # a user's statement, other tables still fine
    writer.submit("book_deltas", deltas(4))
    writer.submit("trades", trades(range(3)))

    assert wait_for_condition(lambda: writer.fault is not None)
    fault = writer.fault
    assert fault is not None and "cannot write book_deltas" in fault
    assert "book_deltas does not exist" in fault
    stored = store.sql("SELECT count(*) AS n FROM trades")["n"].tolist()
    assert stored == [3]  # the rest of the cycle was committed
    assert writer.stats().rejected["book_deltas"] == 0  # not thrown away: held
    assert writer.stats().pending_rows == 4

    with store.cursor() as cursor:  # the table is back: the held rows go in
        cursor.execute(TABLES["book_deltas"].ddl)
    writer.flush()
    assert store.table_counts()["book_deltas"] == 4
    assert writer.fault is None


def wait_for_condition(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_a_producer_is_held_back_while_the_writer_is_a_full_queue_behind(tmp_path: Path) -> None:
    stuck, gate = threading.Event(), threading.Event()

    def on_commit(_: dict[str, int]) -> None:  # the writer thread waits here until the gate
        stuck.set()
        gate.wait(10)

    store = Store.open(tmp_path / "s.duckdb")
    try:
        writer = store.start_writer(on_commit=on_commit, max_queued_rows=1_000)
        writer.submit("book_deltas", deltas(10))
        assert writer.wait_for_room(1.0)  # under the bound: no wait
        assert stuck.wait(5)
        writer.submit("book_deltas", deltas(3_000, start=10))  # the writer is stuck

        assert not writer.wait_for_room(0.1)
        assert writer.stats().queued_rows == 3_000
        assert writer.stats().waits == 1

        gate.set()
        assert writer.wait_for_room(5.0)
        writer.flush()
        assert store.table_counts()["book_deltas"] == 3_010
    finally:
        gate.set()
        store.close()


def test_a_backlog_the_writer_has_not_converted_yet_still_holds_producers_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A starved writer converts a budget's worth per cycle and puts the rest back: those rows
    never left the queue, so they must keep counting against the bound during the cycle
    (they once did not, and a 1 M-message burst queued 2.3 M rows against a bound of 1e5)."""
    converting, gate = threading.Event(), threading.Event()
    real_to_arrow = writer_module._to_arrow
    calls = [0]

    def slow_to_arrow(submission: Any) -> Any:  # the second conversion stalls the cycle
        calls[0] += 1
        if calls[0] == 2:
            converting.set()
            gate.wait(10)
        return real_to_arrow(submission)

    monkeypatch.setattr(writer_module, "_to_arrow", slow_to_arrow)
    stuck, release = threading.Event(), threading.Event()

    def on_commit(_: dict[str, int]) -> None:  # the first commit waits, so the rest queue up
        if not stuck.is_set():
            stuck.set()
            release.wait(10)

    store = Store.open(tmp_path / "s.duckdb")
    try:
        writer = store.start_writer(
            on_commit=on_commit, max_queued_rows=1_000, commit_interval=0.001
        )
        writer.submit("book_deltas", deltas(10))
        assert stuck.wait(5)
        for k in range(5):
            writer.submit("book_deltas", deltas(500, start=10 + 500 * k))
        release.set()
        assert converting.wait(5)  # mid-cycle: one submission converting, four behind it

        assert writer.stats().queued_rows == 2_500
        assert not writer.wait_for_room(0.1)

        gate.set()
        assert writer.wait_for_room(5.0)
        writer.flush()
        assert store.table_counts()["book_deltas"] == 2_510
    finally:
        gate.set()
        release.set()
        store.close()
