"""workbench.replay: a recording read back as the exact event sequence its feed applied live."""

from __future__ import annotations

import importlib
import json
import urllib.request
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import workbench
from tests.e2e import wait_for
from tests.test_feed_subscribe import all_ingest_seqs, faulty_sim, stored_events
from tests.test_store_migrate import v1_copy
from workbench.errors import StoreError, UsageError
from workbench.events import Applied
from workbench.feeds.feed import Feed
from workbench.store import Store

# `workbench.replay` is the function the package exports; the module is looked up by name.
replay_module = importlib.import_module("workbench.replay")
SYMS = ("BTC-USD", "ETH-USD")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Applied], dict]:
    """A faulty simulator session recorded while a subscriber logged every event, and the
    simulator's true books at the end."""
    path = tmp_path_factory.mktemp("replay") / "session.duckdb"
    store = Store.open(path)
    log: list[Applied] = []
    with faulty_sim(3.0) as sim:
        feed = Feed("sim", SYMS, store.writer, ws_url=sim.ws_url, rest_url=sim.rest_url)
        feed.subscribe(log.append)
        feed.start()
        try:
            assert sim.halted.wait(20)
            truth = {}
            for symbol in SYMS:
                with urllib.request.urlopen(f"{sim.rest_url}/book/{symbol}") as reply:
                    truth[symbol] = json.load(reply)

            def caught_up() -> bool:
                """Every book valid and equal to the halted simulator's: the last messages,
                or the resync after a gap among them, were applied, not still in flight."""
                with feed.locked():
                    return all(
                        feed.book(s).valid
                        and feed.book(s).bids() == [(float(p), float(q)) for p, q in t["bids"]]
                        and feed.book(s).asks() == [(float(p), float(q)) for p, q in t["asks"]]
                        for s, t in truth.items()
                    )

            assert wait_for(caught_up, 10)
        finally:
            feed.stop()
    status = feed.status()
    assert status.reconnects >= 1 and status.gaps >= 1 and status.duplicates >= 1
    store.close()
    return path, log, truth


def test_a_replay_yields_exactly_what_a_live_subscriber_saw(session: tuple) -> None:
    path, log, truth = session
    replayed = workbench.replay(path, books=True)
    events = list(replayed)
    assert events == log
    for symbol, true_book in truth.items():
        book = replayed.books[("sim", symbol)]
        assert book.bids() == [(float(p), float(q)) for p, q in true_book["bids"]]
        assert book.asks() == [(float(p), float(q)) for p, q in true_book["asks"]]
        last_valid = next(
            e.event
            for e in reversed(events)
            if e.kind == "top" and e.event.symbol == symbol and e.event.valid
        )
        depth = len(last_valid.bids)
        assert book.top(depth) == (last_valid.bids, last_valid.asks[:depth])


def test_windows_read_ahead_in_order_and_an_iteration_left_early_ends_cleanly(
    session: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small windows: each is read on a helper thread while the previous one is built, and
    the events still come in order; a loop left mid-way waits for the read in flight, closes
    the file (it opens read-write again) and leaves no thread running (conftest checks)."""
    path, log, _ = session
    monkeypatch.setattr(replay_module, "WINDOW", 7)
    assert list(workbench.replay(path)) == log
    events = iter(workbench.replay(path))
    assert [next(events) for _ in range(20)] == log[:20]
    events.close()
    Store.open(path).close()


def test_filters_choose_kinds_symbols_and_times(session: tuple) -> None:
    path, log, _ = session
    trades = list(workbench.replay(path, kinds=["trade"], symbols=[SYMS[0]]))
    assert trades == [e for e in log if e.kind == "trade" and e.event.symbol == SYMS[0]]
    assert list(workbench.replay(path, exchange="kraken")) == []

    books = [e for e in log if e.kind == "book"]
    middle = books[len(books) // 2].event.recv_ts
    later = list(workbench.replay(path, start=middle, kinds=["book", "quality"], symbols=[SYMS[1]]))
    assert later == [
        e
        for e in log
        if e.kind in ("book", "quality")
        and e.event.symbol in (SYMS[1], None)
        and (e.event.recv_ts if e.kind == "book" else e.event.ts) >= middle
    ]
    as_text = workbench.replay(
        path, end=pd.Timestamp(middle, unit="us").isoformat(), kinds=["book"]
    )
    assert list(as_text) == [e for e in books if e.event.recv_ts < middle]


def test_mistakes_are_usage_errors(session: tuple, tmp_path: Path) -> None:
    path, _, _ = session
    with pytest.raises(UsageError, match="unknown event kinds"):
        workbench.replay(path, kinds=["trades"])
    with pytest.raises(UsageError, match="non-empty list"):
        workbench.replay(path, symbols="BTC-USD")
    with pytest.raises(UsageError, match="must be a time"):
        workbench.replay(path, start="yesterday-ish")
    with pytest.raises(UsageError, match="must be after"):
        workbench.replay(path, start=10, end=5)
    with pytest.raises(UsageError, match="a path, a Store or a Workbench"):
        workbench.replay(42)  # type: ignore[arg-type]
    replayed = workbench.replay(path, kinds=["quote"])
    assert list(replayed) == []
    with pytest.raises(UsageError, match="iterated once"):
        list(replayed)
    with pytest.raises(StoreError):
        list(workbench.replay(tmp_path / "missing.duckdb"))


def test_a_migrated_v1_recording_replays(tmp_path: Path) -> None:
    path = v1_copy(tmp_path)
    with pytest.raises(StoreError, match="workbench migrate"):
        workbench.replay(path)
    with Store.open(path) as store:  # migrates
        expected = all_ingest_seqs(store)
        counts = stored_events(store)
    events = list(workbench.replay(path))
    assert [e.ingest_seq for e in events] == expected
    assert +Counter(e.kind for e in events) == counts
    # v1 did not record applied snapshots, so its deltas alone cannot rebuild a book
    assert not any(e.kind == "book" and e.event.reset for e in events)
    assert sum(e.kind == "top" for e in events) > 0  # its top-N pictures still replay


def test_rows_stored_out_of_replay_order_still_replay_in_it(tmp_path: Path) -> None:
    """Replay reads the big tables in insertion order and sorts only when it must: rows of one
    event stored ask-first (a migrated file) or a depth trim's deletions after the asks, and
    trades stored out of ingest_seq order, still come back as the events the feed applied."""
    path = tmp_path / "scrambled.duckdb"
    book = (
        "INSERT INTO book_deltas VALUES "
        "('sim', 'BTC-USD', make_timestamp(?), make_timestamp(?), ?, ?, ?, ?, ?, ?)"
    )
    trade = (
        "INSERT INTO trades BY NAME SELECT 'sim' AS exchange, 'BTC-USD' AS symbol, "
        "make_timestamp(?) AS ts, make_timestamp(?) AS recv_ts, ? AS price, 1.0 AS size, "
        "'buy' AS side, ? AS trade_id, ? AS seq, ? AS ingest_seq"
    )
    with Store.open(path) as store, store.cursor() as cursor:
        for row in (
            [10, 11, 1, "snapshot", "ask", 101.0, 2.0, 1],
            [10, 11, 1, "reset", None, None, None, 1],
            [10, 11, 1, "snapshot", "bid", 100.0, 1.0, 1],
        ):
            cursor.execute(book, row)
        cursor.execute(trade, [30, 31, 100.5, "t3", 3, 3])
        cursor.execute(trade, [20, 21, 100.0, "t2", 2, 2])
        for row in (
            [40, 41, 4, "delta", "bid", 100.0, 0.0, 4],
            [40, 41, 4, "delta", "ask", 101.0, 3.0, 4],
            [40, 41, 4, "delta", "bid", 99.5, 0.0, 4],  # trimmed after the message's asks
        ):
            cursor.execute(book, row)
    events = list(workbench.replay(path, kinds=["book", "trade"]))
    assert [(e.ingest_seq, e.kind) for e in events] == [
        (1, "book"),
        (2, "trade"),
        (3, "trade"),
        (4, "book"),
    ]
    first, last = events[0].event, events[3].event
    assert first.reset and first.bids == [(100.0, 1.0)] and first.asks == [(101.0, 2.0)]
    assert not last.reset and last.bids == [(100.0, 0.0), (99.5, 0.0)]
    assert last.asks == [(101.0, 3.0)]
    assert [e.event.trade_id for e in events[1:3]] == ["t2", "t3"]
