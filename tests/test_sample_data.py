"""data/sample_sim_session.jsonl: a small committed recording of simulator traffic.

It is what a user (or a test) can replay without starting anything: the opening snapshots of
seed 7 followed by 2,000 messages. The file must stay exactly reproducible from the seed, and
replaying it through the venue protocol and the book must land on the simulator's own book.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from workbench.core.book import OrderBook
from workbench.events import BookDelta, BookSnapshot, Trade
from workbench.sim.market import Market
from workbench.venues.sim import SimProtocol

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_sim_session.jsonl"
SYMBOLS = ("BTC-USD", "ETH-USD")


def regenerate() -> tuple[list[bytes], Market]:
    market = Market(seed=7, symbols=SYMBOLS, ts=1_763_712_000_000_000)
    lines = [msgspec.json.encode(market.snapshot(s)) for s in SYMBOLS]
    lines += [msgspec.json.encode(m) for m in market.generate(2000, ts=1_763_712_000_000_000)]
    return lines, market


def test_sample_is_reproducible_from_its_seed() -> None:
    lines, _ = regenerate()
    assert SAMPLE.read_bytes() == b"\n".join(lines) + b"\n"


def test_replaying_the_sample_rebuilds_the_true_book() -> None:
    _, market = regenerate()
    protocol = SimProtocol(list(SYMBOLS))
    books = {s: OrderBook() for s in SYMBOLS}
    trades = 0
    for line in SAMPLE.read_bytes().splitlines():
        for event in protocol.parse(line, recv_ts=0):
            if isinstance(event, BookSnapshot):
                books[event.symbol].apply_snapshot(event.bids, event.asks, seq=event.seq)
            elif isinstance(event, BookDelta):
                books[event.symbol].apply_delta(event.bids, event.asks)
            elif isinstance(event, Trade):
                trades += 1
    assert trades > 100
    for symbol in SYMBOLS:
        truth = market.snapshot(symbol)
        assert books[symbol].bids() == [(float(p), float(q)) for p, q in truth.bids]
        assert books[symbol].asks() == [(float(p), float(q)) for p, q in truth.asks]
        assert not books[symbol].crossed
