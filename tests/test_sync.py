"""The pure book-sync machine against simulator ledgers with drops, duplicates, reordering and
gaps (Hypothesis): whenever it calls its book valid — in particular after every resync — the
book equals the simulator's truth at the book's seq, and what it hands on (a reset with its
levels, then deltas) rebuilds that same book."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.book import OrderBook
from workbench.core.sync import Backfill, BookSync, FetchSnapshot, Resubscribe, SyncRules
from workbench.events import BookDelta, BookSnapshot, Level, Trade
from workbench.sim import market as sim
from workbench.venues.sim import SimProtocol

SYM = "BTC-USD"
RULES = SyncRules(
    sequenced=SimProtocol.sequenced,
    seq_rule=SimProtocol.seq_rule,
    book_depth=SimProtocol.book_depth,
    crossed_is_desync=SimProtocol.crossed_is_desync,
    snapshot_in_band=SimProtocol.snapshot_in_band,
)
Event = BookDelta | Trade


def levels(side: list[tuple[str, str]]) -> list[Level]:
    return [(float(p), float(q)) for p, q in side]


@dataclass
class Ledger:
    """A simulator stream and the true book after every seq (a trade leaves it unchanged)."""

    opening: BookSnapshot
    events: list[Event]
    truth: dict[int, tuple[list[Level], list[Level]]]

    def snapshot(self, seq: int) -> BookSnapshot:
        bids, asks = self.truth[seq]
        return BookSnapshot("sim", SYM, seq, seq, bids, asks, seq=seq)


def ledger(seed: int, count: int) -> Ledger:
    market = sim.Market(seed, [SYM])
    first = market.snapshot(SYM)
    truth = {first.seq: (levels(first.bids), levels(first.asks))}
    opening = BookSnapshot("sim", SYM, 0, 0, *truth[first.seq], seq=first.seq)
    events: list[Event] = []
    while len(events) < count:
        before = truth[market.seq(SYM)]
        for m in market.step(SYM, len(events)):
            if isinstance(m, sim.Trade):
                truth[m.seq] = before
                trade_id = str(m.trade_id)
                price, size = float(m.price), float(m.size)
                events.append(Trade("sim", SYM, m.seq, m.seq, price, size, m.side, trade_id, m.seq))
            else:
                book = market.snapshot(SYM)
                truth[m.seq] = (levels(book.bids), levels(book.asks))
                events.append(
                    BookDelta("sim", SYM, m.seq, m.seq, levels(m.bids), levels(m.asks), seq=m.seq)
                )
    return Ledger(opening, events, truth)


@dataclass
class Out:
    """What the machine hands on, rebuilt into a book as a replay of the deltas would."""

    rebuilt: OrderBook = field(default_factory=OrderBook)
    incidents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def applied_delta(self, symbol: str, d: BookDelta, trimmed: Any) -> None:
        for price, size in d.bids:
            self.rebuilt.set_bid(price, size)
        for price, size in d.asks:
            self.rebuilt.set_ask(price, size)

    def applied_snapshot(self, symbol: str, snap: BookSnapshot, trimmed: Any) -> None:
        self.rebuilt.clear()
        self.applied_delta(symbol, BookDelta("sim", symbol, 0, 0, snap.bids, snap.asks), None)

    def incident(self, symbol: str | None, kind: str, detail: dict[str, Any]) -> None:
        self.incidents.append((kind, detail))


class Harness:
    """Delivers events to a :class:`BookSync` and executes its actions as a feed would: a
    REST snapshot is the truth at the newest seq the venue has sent so far."""

    def __init__(self, data: Ledger, rules: SyncRules = RULES, conns: int = 1) -> None:
        self.data = data
        self.out = Out()
        self.sync = BookSync(SYM, rules, self.out)
        self.now = 0.0
        self.sent = data.opening.seq or 0
        self.fetches = 0
        for conn in range(1, conns + 1):
            self.sync.connection_up(conn)
            self.sync.on_snapshot(conn, data.opening, self.now)

    def deliver(self, conn: int, event: Event) -> None:
        self.now += 0.01
        assert event.seq is not None
        self.sent = max(self.sent, event.seq)
        if isinstance(event, BookDelta):
            self.sync.on_delta(conn, event, self.now)
        else:
            self.sync.on_trade(conn, event, self.now)
        self.check()
        self.maintain()

    def maintain(self) -> None:
        for action in self.sync.due(self.now, acked=True, rest_book=True):
            assert not isinstance(action, Resubscribe)  # it was told a REST book exists
            if isinstance(action, FetchSnapshot):
                self.fetches += 1
                if self.sync.wants_snapshot(action.generation):
                    self.sync.apply_snapshot(self.data.snapshot(self.sent), None, self.now)
                    self.check()
            else:
                assert isinstance(action, Backfill)

    def check(self) -> None:
        book = self.sync.book
        assert self.out.rebuilt.bids() == book.bids() and self.out.rebuilt.asks() == book.asks()
        if book.valid:
            assert book.seq is not None
            bids, asks = self.data.truth[book.seq]
            assert (book.bids(), book.asks()) == (bids, asks), f"at seq {book.seq}"

    def settle(self) -> None:
        """After the stream: let every due resync happen."""
        for _ in range(3):
            self.now += 10.0
            self.maintain()


FAULTS = st.sampled_from(["ok"] * 6 + ["drop", "dup", "swap", "gap"])


def with_faults(events: list[Event], faults: list[str]) -> list[Event]:
    """The stream one connection delivers: a message dropped, doubled, swapped with the next,
    or a run of five lost."""
    out: list[Event] = []
    i = 0
    while i < len(events):
        fault = faults[i % len(faults)]
        if fault == "drop":
            i += 1
        elif fault == "dup":
            out += [events[i], events[i]]
            i += 1
        elif fault == "swap" and i + 1 < len(events):
            out += [events[i + 1], events[i]]
            i += 2
        elif fault == "gap":
            i += 5
        else:
            out.append(events[i])
            i += 1
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), faults=st.lists(FAULTS, min_size=1, max_size=60))
def test_one_faulty_connection_every_valid_book_equals_the_truth(
    seed: int, faults: list[str]
) -> None:
    data = ledger(seed, 150)
    harness = Harness(data)
    delivered = with_faults(data.events, faults)
    for event in delivered:
        harness.deliver(1, event)
    harness.settle()
    sync = harness.sync
    assert sync.book.valid
    assert sync.book.seq is not None and sync.book.seq >= max(
        (e.seq or 0 for e in delivered), default=0
    )
    # what the stream itself reveals: a seq beyond the next one is a gap, one already passed
    # (doubled, or overtaken by a swap) a duplicate
    passed, skips, repeats = data.opening.seq or 0, 0, 0
    for event in delivered:
        assert event.seq is not None
        skips += event.seq > passed + 1
        repeats += event.seq <= passed
        passed = max(passed, event.seq)
    assert (sync.gaps > 0) == (skips > 0) and (harness.fetches > 0) == (skips > 0)
    assert sync.duplicates == repeats
    kinds = [kind for kind, _ in harness.out.incidents]
    assert kinds.count("gap") == sync.gaps
    assert kinds.count("resync") == sync.resyncs + 1  # and the opening snapshot's


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    faults=st.lists(FAULTS, min_size=1, max_size=40),
    turns=st.lists(st.booleans(), min_size=1, max_size=80),
)
def test_a_redundant_twin_covers_every_loss_of_the_other_connection(
    seed: int, faults: list[str], turns: list[bool]
) -> None:
    """Connection 1 is intact, connection 2 faulty, interleaved at random: the merged book never
    loses sync and ends equal to the truth (the gap timeout is long: 1 always catches up)."""
    data = ledger(seed, 150)
    rules = SyncRules(**{**_fields(RULES), "redundant": True, "gap_timeout": 1e9})
    harness = Harness(data, rules, conns=2)
    streams = {1: list(data.events), 2: with_faults(data.events, faults)}
    i = 0
    while streams[1] or streams[2]:
        conn = 1 if turns[i % len(turns)] else 2
        i += 1
        if not streams[conn]:
            conn = 3 - conn
        harness.deliver(conn, streams[conn].pop(0))
        assert harness.sync.book.valid
    sync = harness.sync
    assert sync.book.seq == data.events[-1].seq
    assert sync.gaps == 0 and sync.mismatches == 0 and harness.fetches == 0
    assert harness.sync.book.bids() == data.truth[sync.book.seq][0]


def _fields(rules: SyncRules) -> dict[str, Any]:
    return {name: getattr(rules, name) for name in rules.__slots__}  # type: ignore[attr-defined]
