"""The feed runtime drives any venue through the VenueProtocol contract: checksums, venue
signals (SyncLost, ReconnectRequest), per-symbol resubscribes, fixed-depth truncation, quotes
and instruments. A small venue defined here speaks a made-up JSON protocol, so each runtime
rule is pinned down without depending on a real venue's parser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.e2e import wait_for
from tests.helpers.replay_server import ReplayServer, Script
from workbench.core.book import OrderBook
from workbench.errors import UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    Quote,
    ReconnectRequest,
    SyncLost,
)
from workbench.feeds.feed import Feed
from workbench.store import Store
from workbench.venues.base import VenueProtocol

SYM = "AAA-USD"


class ToyProtocol(VenueProtocol):
    """``{"t": "snap"|"upd", "b": [[p, q]], "a": [[p, q]], "c": checksum}``, ``{"t": "lost"}``,
    ``{"t": "bye"}``, ``{"t": "quote", ...}``; books are 3 levels deep; resubscribe per
    symbol with ``{"op": "again", "s": symbol}``."""

    name: ClassVar[str] = "toy"
    default_ws_url: ClassVar[str] = "ws://127.0.0.1:1/ws"
    heartbeat_interval: ClassVar[float] = 0.0
    sequenced: ClassVar[bool] = False
    book_depth = 3

    def subscribe_messages(self) -> list[str]:
        return [json.dumps({"op": "sub", "s": self.symbols})]

    def resubscribe_messages(self, symbol: str) -> list[str]:
        return [json.dumps({"op": "again", "s": symbol})]

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        m = json.loads(payload)
        kind = m["t"]
        if kind in ("snap", "upd"):
            cls = BookSnapshot if kind == "snap" else BookDelta
            bids = [(float(p), float(q)) for p, q in m.get("b", [])]
            asks = [(float(p), float(q)) for p, q in m.get("a", [])]
            if kind == "snap":
                bids.sort(reverse=True)
                asks.sort()
            return [cls(self.name, SYM, 1, recv_ts, bids, asks, checksum=m.get("c"))]
        if kind == "lost":
            return [SyncLost(self.name, None, recv_ts, "sequence", {"expected": 5, "got": 9})]
        if kind == "bye":
            return [ReconnectRequest(self.name, recv_ts, "maintenance")]
        if kind == "quote":
            return [Quote(self.name, SYM, 2, recv_ts, 99.0, 1.0, 101.0, 2.0)]
        return []

    def checksum(self, symbol: str, book: OrderBook) -> int:
        bids, asks = book.top(3)
        return int(sum(p * q for p, q in bids + asks))

    def pair(self, symbol: str) -> tuple[str, str]:
        return ("AAA", "USD")


def book_msg(kind: str, bids: list[list[Any]], asks: list[list[Any]], c: int | None) -> bytes:
    return json.dumps({"t": kind, "b": bids, "a": asks, "c": c}).encode()


def checksum_of(bids: list[list[float]], asks: list[list[float]]) -> int:
    return int(sum(p * q for p, q in bids + asks))


SNAP_BIDS = [[100.0, 1.0], [99.0, 2.0], [98.0, 1.0]]
SNAP_ASKS = [[101.0, 1.0], [102.0, 2.0], [103.0, 1.0]]
SNAP = book_msg("snap", SNAP_BIDS, SNAP_ASKS, checksum_of(SNAP_BIDS, SNAP_ASKS))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "toy.duckdb")
    yield s
    s.close()


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    store.flush()
    with store.cursor() as cur:
        return cur.execute(sql).fetchall()


def run(store: Store, server: ReplayServer, until: Any, **options: Any) -> Feed:
    feed = Feed(ToyProtocol, [SYM], store.writer, ws_url=server.ws_url, **options)
    feed.start()
    try:
        assert wait_for(lambda: until(feed), 10), feed.status()
    finally:
        feed.stop()
        server.stop()
    return feed


def quality(store: Store) -> list[tuple[str, dict[str, Any]]]:
    return [(k, json.loads(d)) for k, d in rows(store, "SELECT kind, detail FROM quality_events")]


def test_checksum_mismatch_invalidates_resubscribes_and_the_fresh_book_is_valid(
    store: Store,
) -> None:
    # 97.5 falls outside the 3-level book at once; the venue's checksum says its book differs.
    bad = book_msg("upd", [[97.5, 5.0]], [], 12345)
    fresh_bids = [[100.0, 3.0], [99.0, 2.0], [98.0, 1.0]]
    fresh = book_msg("snap", fresh_bids, SNAP_ASKS, checksum_of(fresh_bids, SNAP_ASKS))
    server = ReplayServer([Script([SNAP, bad], replies={b'"again"': [fresh]})]).start()
    feed = run(store, server, lambda f: f.status().resyncs == 1)
    assert server.received[-1] == json.dumps({"op": "again", "s": SYM}).encode()
    status = feed.status()
    assert status.checksums == 1 and status.book_valid == {SYM: True}
    assert feed.book(SYM).top(3)[0] == [(100.0, 3.0), (99.0, 2.0), (98.0, 1.0)]
    events = quality(store)
    computed = checksum_of(SNAP_BIDS, SNAP_ASKS)
    assert ("checksum", {"seq": None, "expected": 12345, "computed": computed}) in events
    assert [k for k, _ in events if k in ("checksum", "resync")] == ["resync", "checksum", "resync"]
    valid = rows(store, "SELECT valid FROM book_snapshots ORDER BY recv_ts DESC LIMIT 1")
    assert valid == [(True,)]


def test_levels_pushed_out_of_a_fixed_depth_book_are_recorded_as_deletes(store: Store) -> None:
    bids = [[100.5, 1.0], *SNAP_BIDS[:2]]
    better = book_msg("upd", [[100.5, 1.0]], [], checksum_of(bids, SNAP_ASKS))
    server = ReplayServer([Script([SNAP, better])]).start()
    feed = run(store, server, lambda f: f.book(SYM).best_bid_price == 100.5)
    assert feed.book(SYM).top(5)[0] == [(100.5, 1.0), (100.0, 1.0), (99.0, 2.0)]
    assert rows(
        store, "SELECT side, price, size FROM book_deltas WHERE kind = 'delta' ORDER BY size DESC"
    ) == [
        ("bid", 100.5, 1.0),
        ("bid", 98.0, 0.0),
    ]
    assert feed.status().checksums == 0


def test_sync_lost_invalidates_every_book_until_the_resubscribed_snapshot(store: Store) -> None:
    lost = json.dumps({"t": "lost"}).encode()
    server = ReplayServer([Script([SNAP, lost], replies={b'"again"': [SNAP]})]).start()
    feed = run(store, server, lambda f: f.status().resyncs == 1)
    assert ("gap", {"rule": "sequence", "expected": 5, "got": 9}) in quality(store)
    assert feed.status().gaps == 1 and feed.status().book_valid == {SYM: True}


def test_a_venue_reconnect_request_reconnects_and_rebuilds_the_book(store: Store) -> None:
    bye = json.dumps({"t": "bye"}).encode()
    server = ReplayServer([Script([SNAP, bye]), Script([SNAP])]).start()
    feed = run(store, server, lambda f: f.status().reconnects == 1 and f.status().resyncs == 1)
    disconnects = [d for k, d in quality(store) if k == "disconnect"]
    assert disconnects == [{"conn": 1, "reason": "venue asked to reconnect: maintenance"}]
    assert feed.status().book_valid == {SYM: True}


def test_quotes_and_the_normalized_instrument_are_stored(store: Store) -> None:
    quote = json.dumps({"t": "quote"}).encode()
    server = ReplayServer([Script([SNAP, quote, quote])]).start()
    feed = run(store, server, lambda f: f.status().quotes == 2)
    assert rows(store, "SELECT symbol, bid_price, ask_size FROM quotes") == [
        (SYM, 99.0, 2.0),
        (SYM, 99.0, 2.0),
    ]
    assert rows(store, "SELECT * FROM instruments") == [("toy", SYM, "AAA-USD", "AAA", "USD")]
    assert feed.status().quotes == 2


def test_redundant_connections_need_a_sequenced_venue(store: Store) -> None:
    with pytest.raises(UsageError, match="numbers no book messages"):
        Feed(ToyProtocol, [SYM], store.writer, redundant=True)
