"""The L2 book: absolute sizes, deletes, best prices, top-N, crossed and validity."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.book import OrderBook


def make_book() -> OrderBook:
    book = OrderBook()
    book.apply_snapshot([(100.0, 1.0), (99.5, 2.0), (99.0, 3.0)], [(100.5, 1.5), (101.0, 2.5)])
    return book


def test_snapshot_gives_best_prices_mid_and_spread() -> None:
    book = make_book()
    assert book.best_bid == (100.0, 1.0)
    assert book.best_ask == (100.5, 1.5)
    assert book.mid == 100.25
    assert book.spread == 0.5
    assert book.valid


def test_absolute_size_replaces_and_zero_deletes() -> None:
    book = make_book()
    book.set_bid(99.5, 7.0)
    book.set_bid(100.0, 0.0)
    assert book.best_bid == (99.5, 7.0)
    book.set_ask(100.25, 4.0)
    assert book.best_ask == (100.25, 4.0)
    assert book.top(5) == ([(99.5, 7.0), (99.0, 3.0)], [(100.25, 4.0), (100.5, 1.5), (101.0, 2.5)])


def test_deleting_unknown_level_is_harmless() -> None:
    book = make_book()
    book.set_ask(250.0, 0.0)
    book.set_bid(1.0, 0.0)
    assert len(book) == 5


def test_top_n_is_truncated_and_ordered() -> None:
    book = make_book()
    bids, asks = book.top(2)
    assert bids == [(100.0, 1.0), (99.5, 2.0)]
    assert asks == [(100.5, 1.5), (101.0, 2.5)]
    assert book.top(0) == ([], [])


def test_crossed_detection() -> None:
    book = make_book()
    assert not book.crossed
    book.set_bid(100.5, 1.0)
    assert book.crossed


def test_validity_flag_follows_gaps_and_snapshots() -> None:
    book = OrderBook()
    assert not book.valid
    book.apply_snapshot([(1.0, 1.0)], [(2.0, 1.0)], seq=5)
    assert book.valid and book.seq == 5
    book.invalidate()
    assert not book.valid
    book.apply_snapshot([(1.0, 1.0)], [(2.0, 1.0)], seq=9)
    assert book.valid


def test_empty_book_has_no_prices() -> None:
    book = OrderBook()
    assert book.best_bid is None and book.best_ask is None
    assert book.mid is None and book.spread is None and not book.crossed


prices = st.integers(min_value=1, max_value=400).map(lambda t: t * 0.25)
sizes = st.integers(min_value=1, max_value=50).map(lambda n: n / 8)
side = st.dictionaries(prices, sizes, max_size=40)


def _diff(old: dict[float, float], new: dict[float, float]) -> list[tuple[float, float]]:
    changes = [(p, 0.0) for p in old if p not in new]
    changes += [(p, s) for p, s in new.items() if old.get(p) != s]
    return changes


@settings(max_examples=300, deadline=None)
@given(
    side,
    side,
    side,
    side,
    st.randoms(use_true_random=False),
    st.lists(st.tuples(st.booleans(), prices, sizes), max_size=30),
)
def test_book_rebuilt_from_deltas_equals_target_snapshot(
    bids_a, asks_a, bids_b, asks_b, rnd, noise
) -> None:  # type: ignore[no-untyped-def]
    """Noise, then the diff to B in any order, lands exactly on snapshot B."""
    book = OrderBook()
    book.apply_snapshot(bids_a.items(), asks_a.items())
    current_bids, current_asks = dict(bids_a), dict(asks_a)
    for is_bid, price, size in noise:
        (book.set_bid if is_bid else book.set_ask)(price, size)
        (current_bids if is_bid else current_asks)[price] = size
    changes = [("b", p, s) for p, s in _diff(current_bids, bids_b)]
    changes += [("a", p, s) for p, s in _diff(current_asks, asks_b)]
    rnd.shuffle(changes)
    for which, price, size in changes:
        (book.set_bid if which == "b" else book.set_ask)(price, size)
    target = OrderBook()
    target.apply_snapshot(bids_b.items(), asks_b.items())
    assert book.bids() == target.bids() == sorted(bids_b.items(), reverse=True)
    assert book.asks() == target.asks() == sorted(asks_b.items())
    assert book.best_bid == target.best_bid and book.best_ask == target.best_ask


def test_truncate_keeps_the_best_levels_of_each_side() -> None:
    book = OrderBook()
    book.apply_snapshot([(100.0 - i, 1.0) for i in range(5)], [(101.0 + i, 2.0) for i in range(5)])
    assert book.truncate(2) == ([96.0, 97.0, 98.0], [103.0, 104.0, 105.0])
    assert book.top(10) == ([(100.0, 1.0), (99.0, 1.0)], [(101.0, 2.0), (102.0, 2.0)])
    book.set_bid(98.0, 3.0)  # a level pushed out earlier can come back as a fresh insert
    assert book.top(10)[0] == [(100.0, 1.0), (99.0, 1.0), (98.0, 3.0)]
    assert len(book) == 5


def test_top_prices_are_the_price_columns_of_top_and_size_maps_the_live_sizes() -> None:
    book = make_book()
    assert book.top_prices(2) == ([100.0, 99.5], [100.5, 101.0])
    assert book.top_prices(10) == ([100.0, 99.5, 99.0], [100.5, 101.0])
    assert book.top_prices(0) == ([], []) and book.top_prices(-1) == ([], [])
    assert OrderBook().top_prices(10) == ([], [])
    bid_sizes, ask_sizes = book.size_maps()
    assert dict(bid_sizes) == {100.0: 1.0, 99.5: 2.0, 99.0: 3.0}
    assert dict(ask_sizes) == {100.5: 1.5, 101.0: 2.5}
    book.set_ask(100.5, 9.0)
    assert ask_sizes[100.5] == 9.0  # live, not a copy
    prices, _ = book.top_prices(2)
    prices.append(1.0)  # a new list: the caller cannot corrupt the book
    assert book.top_prices(3)[0] == [100.0, 99.5, 99.0]


@settings(max_examples=200, deadline=None)
@given(side, side, st.integers(min_value=-2, max_value=45))
def test_top_prices_and_size_maps_agree_with_top(
    bids: dict[float, float], asks: dict[float, float], n: int
) -> None:
    book = OrderBook()
    book.apply_snapshot(bids.items(), asks.items())
    bid_prices, ask_prices = book.top_prices(n)
    bid_sizes, ask_sizes = book.size_maps()
    top_bids, top_asks = book.top(max(n, 0))
    assert [(p, bid_sizes[p]) for p in bid_prices] == top_bids
    assert [(p, ask_sizes[p]) for p in ask_prices] == top_asks


@settings(max_examples=200, deadline=None)
@given(side, side, st.integers(min_value=0, max_value=45))
def test_truncate_removes_exactly_what_lies_beyond_the_depth(
    bids: dict[float, float], asks: dict[float, float], depth: int
) -> None:
    """Within the depth (the fast path) nothing is removed; beyond it, the worst levels."""
    book = OrderBook()
    book.apply_snapshot(bids.items(), asks.items())
    removed_bids, removed_asks = book.truncate(depth)
    assert removed_bids == sorted(bids)[: max(len(bids) - depth, 0)]
    assert removed_asks == sorted(asks)[depth:]
    assert book.bids() == sorted(bids.items(), reverse=True)[:depth]
    assert book.asks() == sorted(asks.items())[:depth]
    assert book.truncate(depth) == ([], [])
