"""REST polling mode: a source without WebSocket still yields every trade and a true book."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import wait_for
from workbench.errors import UsageError
from workbench.feeds.feed import Feed
from workbench.sim import SimConfig, SimServer
from workbench.store import Store

SYM = "BTC-USD"


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "poll.duckdb") as s:
        yield s


def test_polling_records_every_trade_and_tracks_the_book(store: Store) -> None:
    config = SimConfig(port=0, seed=4, symbols=(SYM,), rate=200.0, duration=2.0, grace=30.0)
    with SimServer(config) as sim:
        feed = Feed("sim", [SYM], store.writer, rest_url=sim.rest_url, poll_interval=0.2).start()
        try:
            assert wait_for(sim.halted.is_set, 10)
            truth = get(f"{sim.rest_url}/book/{SYM}")
            assert wait_for(lambda: feed.book(SYM).seq == truth["seq"], 5)
            first = feed.status()
            assert first.connections == 1  # the last poll succeeded
            tracker = feed.state.symbols[SYM].sync.trades
            assert wait_for(lambda: feed.status().trades == first.trades and not tracker.missing, 5)
        finally:
            feed.stop()
        with feed.locked():
            book = feed.book(SYM)
            assert book.valid
            assert book.bids() == [(float(p), float(q)) for p, q in truth["bids"]]
            assert book.asks() == [(float(p), float(q)) for p, q in truth["asks"]]
    store.flush()
    initial = next(
        json.loads(d)
        for (d,) in store.cursor()
        .execute("SELECT detail FROM quality_events WHERE kind = 'resync'")
        .fetchall()
    )
    assert initial["initial"] and initial["source"] == "rest"
    stored = {int(t) for (t,) in store.cursor().execute("SELECT trade_id FROM trades").fetchall()}
    assert len(stored) == store.table_counts()["trades"]
    assert stored == set(range(int(initial["last_trade_id"]) + 1, truth["last_trade_id"] + 1))
    assert feed.status().connections == 0 and feed.status().quarantined == 0


def test_polling_needs_a_rest_url(store: Store) -> None:
    with pytest.raises(UsageError, match="poll_interval must be > 0"):
        Feed("sim", [SYM], store.writer, poll_interval=0)
    with pytest.raises(UsageError, match="redundant"):
        Feed("sim", [SYM], store.writer, poll_interval=1, redundant=True)
