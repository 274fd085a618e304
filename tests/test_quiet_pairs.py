"""A pair that rarely trades still gets a book: venues whose book starts from a REST snapshot
(Bitstamp, Binance) fetch it as soon as the venue acknowledges the subscription, not when the
first diff arrives, and the sequencing rules hold when that snapshot comes before any diff.

The replay servers here send the acknowledgement and then nothing; diffs, where a test needs
them, are pushed only after the snapshot was fetched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import wait_for
from tests.helpers.replay_server import ReplayServer, Script
from tests.test_record_binance import ACK as BINANCE_ACK
from tests.test_record_binance import History as BinanceHistory
from tests.test_record_bitstamp import BOOK_PATH, SUBSCRIBED, T0
from tests.test_record_bitstamp import History as BitstampHistory
from tests.venue_e2e import REST_SYNCED, final_book, record_venue, serve
from workbench.feeds.feed import Feed
from workbench.store import Store

BINANCE_DEPTH = "/api/v3/depth?symbol=BTCUSDT&limit=1000"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "quiet.duckdb") as s:
        yield s


def stored_snapshots(store: Store, exchange: str) -> list[tuple[Any, ...]]:
    store.flush()
    with store.cursor() as cur:
        return cur.execute(
            "SELECT valid, side, price, size FROM book_snapshots WHERE exchange = ? "
            "ORDER BY recv_ts, side, level",
            [exchange],
        ).fetchall()


def book_of(feed: Feed, symbol: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    with feed.locked():
        return feed.book(symbol).top(20)


def bitstamp_truth() -> BitstampHistory:
    return BitstampHistory(
        [["25.10", "3.00000000"], ["25.00", "1.50000000"]],
        [["25.30", "2.00000000"], ["25.40", "4.00000000"]],
    )


def test_a_bitstamp_pair_with_no_diffs_has_a_valid_stored_book(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = bitstamp_truth()
    server = serve(servers, Script(list(SUBSCRIBED)), rest={BOOK_PATH: truth.snapshot()})
    db = tmp_path / "bitstamp.duckdb"
    record_venue("bitstamp", ["btcusd"], server, db, until=REST_SYNCED)

    valid, bids, asks = final_book(db, "bitstamp", "btcusd")
    assert valid and (bids, asks) == truth.book.top(20)
    assert server.rest_requests == [BOOK_PATH]  # fetched once, with no diff to prompt it


def test_a_binance_pair_with_no_diffs_has_a_valid_stored_book(
    tmp_path: Path, servers: list[ReplayServer]
) -> None:
    truth = BinanceHistory([["100.0", "1"], ["99.5", "2"]], [["100.5", "3"]], last_id=500)
    server = serve(servers, Script([BINANCE_ACK]), rest={BINANCE_DEPTH: truth.snapshot()})
    db = tmp_path / "binance.duckdb"
    record_venue("binance", ["BTCUSDT"], server, db, until=REST_SYNCED)

    valid, bids, asks = final_book(db, "binance", "BTCUSDT")
    assert valid and (bids, asks) == truth.book.top(20)
    assert server.rest_requests == [BINANCE_DEPTH]


def test_bitstamp_diffs_after_a_snapshot_that_came_first_keep_the_monotonic_rule(
    store: Store, servers: list[ReplayServer]
) -> None:
    truth = bitstamp_truth()
    truth.micros = T0 + 1_000_000
    server = serve(servers, Script(list(SUBSCRIBED)), rest={BOOK_PATH: truth.snapshot()})
    feed = Feed(
        "bitstamp",
        ["btcusd"],
        store.writer,
        ws_url=server.ws_url,
        rest_url=server.rest_url,
        snapshot_interval=0.1,
    ).start()
    try:
        assert wait_for(lambda: feed.status().book_valid == {"btcusd": True}, 10)
        assert wait_for(lambda: stored_snapshots(store, "bitstamp"), 10)
        assert all(row[0] for row in stored_snapshots(store, "bitstamp"))
        assert feed.status().subscribed == {"btcusd": True}
        # One diff the snapshot already holds (not newer than it), then two newer ones.
        held = json.loads(truth.diff(T0 + 1_000_001, [], []))
        held["data"] |= {"microtimestamp": str(T0 + 900_000), "bids": [["25.10", "9"]]}
        newer = [
            truth.diff(T0 + 1_200_000, [["25.05", "0.50000000"]], []),
            truth.diff(T0 + 1_300_000, [["25.00", "0.00000000"]], [["25.30", "1.00000000"]]),
        ]
        assert server.push([json.dumps(held).encode(), *newer]) == 1
        assert wait_for(lambda: book_of(feed, "btcusd") == truth.book.top(20), 10)
    finally:
        feed.stop()
    status = feed.status()
    assert status.book_valid == {"btcusd": True} and status.gaps == 0
    assert server.rest_requests == [BOOK_PATH]


def binance_feed(store: Store, server: ReplayServer) -> Feed:
    return Feed(
        "binance",
        ["BTCUSDT"],
        store.writer,
        ws_url=server.ws_url,
        rest_url=server.rest_url,
        backfill=False,
    ).start()


def test_binance_first_diff_after_an_early_snapshot_must_straddle_it(
    store: Store, servers: list[ReplayServer]
) -> None:
    truth = BinanceHistory([["100.0", "1"], ["99.5", "2"]], [["100.5", "3"]], last_id=500)
    snapshot = truth.snapshot()
    server = serve(servers, Script([BINANCE_ACK]), rest={BINANCE_DEPTH: snapshot})
    feed = binance_feed(store, server)
    try:
        assert wait_for(lambda: feed.status().book_valid == {"BTCUSDT": True}, 10)
        stale = truth.event(490, 500, [["99.0", "7"]], [], "BTCUSDT")  # u <= lastUpdateId
        straddling = truth.event(501, 505, [["100.0", "4"]], [], "BTCUSDT")
        straddling = straddling.replace(b'"U": 501', b'"U": 498')  # U <= 501 <= u
        following = truth.event(506, 506, [], [["100.5", "0"], ["101.0", "1"]], "BTCUSDT")
        assert server.push([stale, straddling, following]) == 1
        assert wait_for(lambda: book_of(feed, "BTCUSDT") == truth.book.top(20), 10)
    finally:
        feed.stop()
    assert feed.status().gaps == 0 and feed.status().book_valid == {"BTCUSDT": True}


def test_binance_a_first_diff_past_an_early_snapshot_is_a_gap_and_refetches(
    store: Store, servers: list[ReplayServer]
) -> None:
    truth = BinanceHistory([["100.0", "1"]], [["100.5", "3"]], last_id=500)
    first_snapshot = truth.snapshot()
    truth.event(501, 509, [["99.0", "2"]], [], "BTCUSDT")  # never delivered to the client
    later = truth.event(510, 512, [["100.0", "6"]], [], "BTCUSDT")
    second_snapshot = truth.snapshot()  # lastUpdateId 512: holds everything so far
    server = serve(
        servers, Script([BINANCE_ACK]), rest={BINANCE_DEPTH: [first_snapshot, second_snapshot]}
    )
    feed = binance_feed(store, server)
    try:
        assert wait_for(lambda: feed.status().book_valid == {"BTCUSDT": True}, 10)
        assert server.push([later]) == 1
        assert wait_for(lambda: server.rest_requests.count(BINANCE_DEPTH) == 2, 10)
        assert wait_for(lambda: feed.status().book_valid == {"BTCUSDT": True}, 10)
        assert book_of(feed, "BTCUSDT") == truth.book.top(20)
    finally:
        feed.stop()
    assert feed.status().gaps == 1
    store.flush()
    with store.cursor() as cur:
        rows = cur.execute("SELECT detail FROM quality_events WHERE kind = 'gap'").fetchall()
    assert [json.loads(d)["from_seq"] for (d,) in rows] == [501]
