"""The feed runtime against a scripted local WebSocket + REST server and a real DuckDB file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import wait_for
from tests.helpers.replay_server import ReplayServer, Script
from workbench.errors import UsageError
from workbench.feeds.feed import Feed
from workbench.store import Store
from workbench.venues.sim import SimProtocol

SYM = "BTC-USD"


def msg(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def snapshot(seq: int, bids: list[list[str]], asks: list[list[str]], **extra: Any) -> bytes:
    return msg(type="snapshot", symbol=SYM, seq=seq, ts=1000 + seq, bids=bids, asks=asks, **extra)


def delta(seq: int, bids: list[list[str]] = (), asks: list[list[str]] = ()) -> bytes:  # type: ignore[assignment]
    return msg(type="delta", symbol=SYM, seq=seq, ts=1000 + seq, bids=list(bids), asks=list(asks))


def trade(seq: int, trade_id: int, price: str = "100.0", side: str = "buy") -> bytes:
    return msg(
        type="trade",
        symbol=SYM,
        seq=seq,
        ts=1000 + seq,
        trade_id=trade_id,
        price=price,
        size="0.5",
        side=side,
    )


def rest_book(seq: int, bids: list[list[str]], asks: list[list[str]], last_trade_id: int) -> bytes:
    return msg(
        symbol=SYM, seq=seq, ts=1000 + seq, bids=bids, asks=asks, last_trade_id=last_trade_id
    )


BOOK = snapshot(
    1, [["100.0", "1"], ["99.5", "2"]], [["100.5", "1"], ["101.0", "3"]], last_trade_id=10
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "feed.duckdb") as s:
        yield s


def start(store: Store, server: ReplayServer, **options: Any) -> Feed:
    return Feed(
        "sim", [SYM], store.writer, ws_url=server.ws_url, rest_url=server.rest_url, **options
    ).start()


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.cursor() as cur:
        return cur.execute(sql).fetchall()


def kinds(store: Store) -> list[str]:
    return [k for (k,) in rows(store, "SELECT kind FROM quality_events ORDER BY ts")]


def test_bad_input_is_quarantined_and_the_feed_keeps_going(store: Store) -> None:
    frames: list[Any] = [
        BOOK,
        b"{not json",
        ("binary", b"\x00\x01\x02garbage"),
        b'{"type":"delta","symbol":"BTC-USD","seq":"2","ts":1,"bids":[],"asks":[]}',
        b'{"type":"trade","symbol":"BTC-USD","seq":2,"ts":1,"price":"1","size":"1"}',
        b'{"type":"delta","symbol":"ETH-USD","seq":2,"ts":1,"bids":[],"asks":[]}',
        b"\xff\xfe\xfd",
        b'{"type":"delta","junk":"' + b"x" * (5 * 1024 * 1024) + b'"}',
        delta(2, bids=[["100.0", "4"]]),
        trade(3, 11),
    ]
    server = ReplayServer([Script(frames)]).start()
    feed = start(store, server)
    try:
        assert wait_for(lambda: feed.status().trades == 1 and feed.status().quarantined == 7, 10)
        with feed.locked():
            assert feed.book(SYM).best_bid == (100.0, 4.0) and feed.book(SYM).valid
    finally:
        feed.stop()
        server.stop()
    store.flush()
    reasons = [r for (r,) in rows(store, "SELECT reason FROM quarantine ORDER BY recv_ts")]
    assert len(reasons) == 7
    assert any("malformed" in r for r in reasons)
    assert any("Expected `int`, got `str`" in r for r in reasons)
    assert any("missing required field" in r for r in reasons)
    assert any("unsubscribed symbol 'ETH-USD'" in r for r in reasons)
    assert any("larger than" in r for r in reasons)
    (huge,) = rows(store, "SELECT size, length(raw) FROM quarantine WHERE reason LIKE '%larger%'")
    assert huge[0] is None and huge[1] <= 4096  # only a prefix of it was read
    assert rows(store, "SELECT trade_id, side FROM trades") == [("11", "buy")]


def test_gap_triggers_rest_resync_and_buffered_deltas_apply(store: Store) -> None:
    frames = [
        BOOK,
        delta(2, asks=[["100.5", "2"]]),
        delta(4, bids=[["99.0", "1"]]),
        delta(5, bids=[["99.5", "0"]]),
    ]
    rest = {
        f"/book/{SYM}": rest_book(
            4, [["100.0", "1"], ["99.5", "2"], ["99.0", "1"]], [["100.5", "2"]], 10
        )
    }
    server = ReplayServer([Script(frames)], rest=rest).start()
    feed = start(store, server)
    try:
        assert wait_for(lambda: feed.status().resyncs == 1, 10)
        assert wait_for(lambda: feed.book(SYM).seq == 5, 5)
        with feed.locked():
            book = feed.book(SYM)
            assert book.valid
            assert book.bids() == [(100.0, 1.0), (99.0, 1.0)]
            assert book.asks() == [(100.5, 2.0)]
    finally:
        feed.stop()
        server.stop()
    store.flush()
    events = rows(store, "SELECT kind, detail FROM quality_events WHERE kind IN ('gap','resync')")
    details = [(k, json.loads(d)) for k, d in events]
    assert ("gap", {"from_seq": 3, "to_seq": 3, "scope": "feed", "rule": "contiguous"}) in details
    assert ("resync", {"from_seq": 3, "snapshot_seq": 4, "source": "rest"}) in details
    status = feed.status()
    assert status.gaps == 1 and status.book_valid == {SYM: True}


def test_crossed_book_is_flagged_and_resynced(store: Store) -> None:
    frames = [BOOK, delta(2, bids=[["101.0", "1"]])]
    rest = {f"/book/{SYM}": rest_book(2, [["100.0", "1"]], [["100.5", "1"]], 10)}
    server = ReplayServer([Script(frames)], rest=rest).start()
    feed = start(store, server)
    try:
        assert wait_for(lambda: feed.status().resyncs == 1, 10)
        with feed.locked():
            assert feed.book(SYM).valid and not feed.book(SYM).crossed
    finally:
        feed.stop()
        server.stop()
    store.flush()
    assert "crossed" in kinds(store) and feed.status().crossed == 1


def test_reconnect_resubscribes_and_backfills_missed_trades(store: Store) -> None:
    first = Script([BOOK, trade(2, 11), trade(3, 12)], close_after=True)
    second = Script(
        [snapshot(6, [["100.0", "1"]], [["100.5", "1"]], last_trade_id=15), trade(7, 16)]
    )
    rest = {
        f"/trades/{SYM}?since_id=12&limit=5000": msg(
            symbol=SYM,
            trades=[
                {
                    "trade_id": i,
                    "price": "100.0",
                    "size": "0.5",
                    "side": "sell",
                    "ts": 5,
                    "seq": i - 9,
                }
                for i in (13, 14, 15, 16)
            ],
        ),
        f"/trades/{SYM}?since_id=16&limit=5000": msg(symbol=SYM, trades=[]),
    }
    server = ReplayServer([first, second], rest=rest).start()
    feed = start(store, server)
    try:
        assert wait_for(lambda: feed.status().trades == 6, 10)
        assert wait_for(lambda: feed.status().reconnects == 1, 5)
    finally:
        feed.stop()
        server.stop()
    store.flush()
    ids = sorted(int(t) for (t,) in rows(store, "SELECT trade_id FROM trades"))
    assert ids == [11, 12, 13, 14, 15, 16]
    assert {"disconnect", "reconnect", "backfill"} <= set(kinds(store))
    assert server.received[0] == b'{"op":"subscribe","symbols":["BTC-USD"]}'


def test_redundant_twin_covers_a_skip_and_records_each_trade_once(store: Store) -> None:
    full = [BOOK, trade(2, 11), delta(3, bids=[["99.0", "5"]]), trade(4, 12)]
    skipped = [BOOK, trade(2, 11), trade(4, 12)]
    server = ReplayServer([Script(skipped, delay=0.5), Script(full)]).start()
    feed = start(store, server, redundant=True, backfill=False)
    try:
        assert wait_for(lambda: feed.book(SYM).seq == 4 and feed.status().connections == 2, 10)
        with feed.locked():
            assert feed.book(SYM).valid
            assert (99.0, 5.0) in feed.book(SYM).bids()
    finally:
        feed.stop()
        server.stop()
    store.flush()
    assert sorted(t for (t,) in rows(store, "SELECT trade_id FROM trades")) == ["11", "12"]
    assert feed.status().gaps == 0 and feed.status().resyncs == 0


def test_stop_joins_every_thread_and_leaves_none(store: Store) -> None:
    server = ReplayServer([Script([BOOK])]).start()
    before = set(threading.enumerate())
    feed = start(store, server, redundant=True)
    assert wait_for(lambda: feed.status().connections == 2, 10)
    feed.stop(timeout=10)
    assert feed.threads_alive() == []
    server.stop()
    leftover = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("wb-")]
    assert leftover == []


def test_stop_during_connection_attempts_ends_every_thread(store: Store) -> None:
    feed = Feed(
        "sim", [SYM], store.writer, ws_url="ws://127.0.0.1:9/ws", rest_url="http://127.0.0.1:9"
    ).start()
    assert wait_for(lambda: feed.status().connection_error is not None, 10)  # backing off now
    feed.stop(timeout=10)
    assert feed.threads_alive() == []


def test_configuration_mistakes_are_usage_errors(store: Store) -> None:
    with pytest.raises(UsageError, match="ws://"):
        Feed("sim", [SYM], store.writer, ws_url="http://127.0.0.1:1/ws")
    with pytest.raises(UsageError, match="REST URL"):
        Feed("sim", [SYM], store.writer, rest_url="ftp://x")
    with pytest.raises(UsageError, match="at least one symbol"):
        Feed("sim", [], store.writer)
    with pytest.raises(UsageError, match="depth"):
        Feed("sim", [SYM], store.writer, depth=0)
    feed = Feed("sim", [SYM], store.writer)
    with pytest.raises(UsageError, match="does not record 'ETH-USD'"):
        feed.book("ETH-USD")


class InBandOnly(SimProtocol):
    """A venue with no REST book: the only way to a fresh snapshot is to reconnect."""

    def snapshot_path(self, symbol: str) -> None:
        return None


def test_without_a_rest_book_a_gap_is_resynced_by_reconnecting(store: Store) -> None:
    first = Script([BOOK, delta(2, bids=[["99.0", "1"]]), delta(4, bids=[["98.0", "1"]])])
    second = Script([snapshot(9, [["97.0", "1"]], [["103.0", "2"]], last_trade_id=10)])
    server = ReplayServer([first, second]).start()
    feed = Feed(
        InBandOnly,
        [SYM],
        store.writer,
        ws_url=server.ws_url,
        rest_url=server.rest_url,
        backfill=False,
    ).start()
    try:
        assert wait_for(lambda: feed.status().resyncs == 1, 10)
        with feed.locked():
            book = feed.book(SYM)
            assert book.valid and book.seq == 9
            assert book.bids() == [(97.0, 1.0)] and book.asks() == [(103.0, 2.0)]
    finally:
        feed.stop()
        server.stop()
    assert server.connections == 2 and feed.status().gaps == 1


def test_recent_trades_tape_hands_each_new_trade_to_a_reader_once(store: Store) -> None:
    first = Script([BOOK, trade(2, 11, "100.0"), trade(3, 12, "101.0"), trade(4, 12, "101.0")])
    server = ReplayServer([first]).start()
    feed = start(store, server)
    try:
        assert wait_for(lambda: feed.status().trades == 2, 10)
        cursor, seen = feed.recent_trades(SYM)
        assert cursor == 2 and [t.price for t in seen] == [100.0, 101.0]
        assert feed.recent_trades(SYM, cursor) == (2, [])  # nothing new; the duplicate is not
        with pytest.raises(UsageError, match="does not record 'ETH-USD'"):
            feed.recent_trades("ETH-USD")
    finally:
        feed.stop()
        server.stop()


def test_a_failed_feed_stops_its_threads_and_says_why(store: Store) -> None:
    server = ReplayServer([Script([BOOK, delta(2, bids=[["100.0", "4"]])])]).start()
    feed = start(store, server)
    try:
        assert wait_for(lambda: feed.book(SYM).seq == 2, 10)
        failer = threading.Thread(target=feed.fail, args=("rows cannot be stored",))
        failer.start()
        failer.join(5)
        assert not feed.running
        assert wait_for(lambda: not feed.threads_alive(), 5)
        status = feed.status()
        assert status.failed == "rows cannot be stored"
        assert status.last_error == "rows cannot be stored"
        assert "FAILED: rows cannot be stored" in status.summary()
        feed.fail("a second reason")  # the first reason is the one that counts
        assert feed.status().failed == "rows cannot be stored"
    finally:
        feed.stop()
        server.stop()
