"""The book fill model: depth walks, latency, queue position, touches and trade-throughs, with
hand-computed numbers, and the properties no sequence of events may break."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.book import OrderBook
from workbench.core.bookfills import BookFills, Pending, RestingLimit, RestingOrders, takeable
from workbench.core.fills import BarFills
from workbench.errors import UsageError
from workbench.events import BookChange, Fill, Level, Order, Side, Trade
from workbench.replay import apply_change

ASKS = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]


def book(bids: list[Level], asks: list[Level]) -> OrderBook:
    b = OrderBook()
    b.apply_snapshot(bids, asks)
    return b


def order(side: Side, size: float | None, price: float | None = None, **kw: Any) -> Order:
    kw.setdefault("type", "market" if price is None else "limit")
    return Order(kw.pop("cid", "o1"), "BTC-USD", side, created_us=0, size=size, price=price, **kw)


def trade(side: Side, price: float, size: float, t: int = 0) -> Trade:
    return Trade("sim", "BTC-USD", t, t, price, size, side, str(t))


def change(
    bids: Sequence[Level] = (), asks: Sequence[Level] = (), t: int = 0, reset: bool = False
) -> BookChange:
    return BookChange("sim", "BTC-USD", t, t, None, reset, list(bids), list(asks))


def rest(
    fills: BookFills, b: OrderBook, o: Order, resting: RestingOrders | None = None
) -> RestingLimit:
    placed = fills.place(o, b)
    assert placed.rejected == "" and placed.resting is not None
    if resting is not None:
        resting.add(placed.resting)
    return placed.resting


def sizes(fills: tuple[Fill, ...]) -> list[tuple[str, float, float]]:
    return [(f.client_order_id, f.price, f.size) for f in fills]


# -- walking the book -------------------------------------------------------------------------


def test_a_market_buy_walks_the_asks_level_by_level() -> None:
    """3.5 against 100×1, 101×2, 102×5: 1@100 + 2@101 + 0.5@102 = 353 of notional."""
    walk = BookFills(taker_fee_bps=10).walk("buy", 3.5, ASKS)
    assert walk.fills == [(100.0, 1.0), (101.0, 2.0), (102.0, 0.5)]
    assert (walk.size, walk.filled, walk.notional, walk.unfilled) == (3.5, 3.5, 353.0, 0.0)
    assert walk.average_price == pytest.approx(100.857_142_857_142_86, rel=1e-12)  # 353 / 3.5
    assert walk.fee == pytest.approx(0.353, rel=1e-12)  # 353 × 10 / 10,000


def test_a_market_order_placed_on_a_book_walks_it_the_same_way() -> None:
    placed = BookFills(taker_fee_bps=10).place(order("buy", 3.5), book([(99.0, 4.0)], ASKS))
    assert placed.resting is None and placed.rejected == ""
    assert placed.taken.fills == [(100.0, 1.0), (101.0, 2.0), (102.0, 0.5)]
    assert placed.taken.notional == 353.0


def test_a_market_sell_walks_the_bids() -> None:
    """2.5 into 99×1, 98×1, 97×3: 99 + 98 + 48.5 = 245.5, average 98.2, 5 bps = 0.12275."""
    b = book([(99.0, 1.0), (98.0, 1.0), (97.0, 3.0)], ASKS)
    walk = BookFills(taker_fee_bps=5).place(order("sell", 2.5), b).taken
    assert walk.fills == [(99.0, 1.0), (98.0, 1.0), (97.0, 0.5)]
    assert walk.notional == 245.5
    assert walk.average_price == pytest.approx(98.2, rel=1e-12)
    assert walk.fee == pytest.approx(0.12275, rel=1e-12)


def test_an_order_larger_than_the_book_fills_what_there_is_and_reports_the_rest() -> None:
    walk = BookFills(taker_fee_bps=10).walk("buy", 10.0, [(100.0, 1.0), (101.0, 2.0)])
    assert (walk.filled, walk.notional, walk.unfilled) == (3.0, 302.0, 7.0)
    assert walk.fee == pytest.approx(0.302, rel=1e-12)
    assert BookFills().walk("sell", 1.0, []).unfilled == 1.0


def test_a_deep_book_is_walked_past_the_first_levels_read() -> None:
    deep = [(100.0 + i, 1.0) for i in range(100)]
    walk = BookFills().place(order("buy", 75.0), book([], deep)).taken
    assert walk.filled == 75.0 and walk.fills[-1] == (174.0, 1.0)
    assert list(takeable(book([], deep), "buy")) == deep


def test_sizes_go_down_to_the_lot_and_below_the_minimum_are_rejected() -> None:
    assert BookFills(lot=0.5).walk("buy", 1.7, ASKS).fills == [(100.0, 1.0), (101.0, 0.5)]
    placed = BookFills(lot=0.5, min_size=1.0).place(order("buy", 0.9), book([], ASKS))
    assert placed.rejected == "size below the instrument's minimum or lot"
    assert placed.taken.filled == 0.0


# -- latency ----------------------------------------------------------------------------------

T0 = 1_700_000_000_000_000


def test_a_decision_meets_the_book_as_it_stood_after_the_latency() -> None:
    """Decided at t with 50 ms latency: the book changes at t+20 ms (asks 100.8×3 replace
    100×1) and at t+60 ms (100.8 gone); a buy of 2 fills 2@100.8, the t+20 ms state."""
    fills = BookFills(latency_ms=50)
    events = [
        change([(99.0, 5.0)], [(100.0, 1.0), (101.0, 5.0)], t=T0, reset=True),
        change(asks=[(100.0, 0.0), (100.8, 3.0)], t=T0 + 20_000),
        change(asks=[(100.8, 0.0)], t=T0 + 60_000),
    ]
    b = OrderBook()
    apply_change(b, events[0])
    pending: Pending[Order] = Pending(fills.latency_us)
    assert pending.push(order("buy", 2.0), decided_us=T0) == T0 + 50_000
    walks = []
    for event in events[1:]:
        walks += [fills.place(o, b).taken for o in pending.release(event.recv_ts)]
        apply_change(b, event)
    assert [w.fills for w in walks] == [[(100.8, 2.0)]]


def test_pending_items_leave_in_order_once_time_passes_their_due_time() -> None:
    pending: Pending[str] = Pending(50)
    pending.push("a", 1_000)
    pending.push("b", 1_000)
    pending.push("c", 1_030)
    assert pending.release(1_050) == ()  # an event at the due time is applied first
    assert pending.release(1_051) == ("a", "b")
    assert (len(pending), pending.next_due) == (1, 1_080)
    assert pending.release(2_000) == ("c",)
    assert pending.next_due is None
    with pytest.raises(UsageError):
        pending.push("late", 999)
    with pytest.raises(UsageError):
        Pending(-1)


# -- resting limit orders ---------------------------------------------------------------------


def test_a_resting_limit_fills_from_a_print_through_it_and_not_from_a_touch() -> None:
    """Buy 5 @ 100 joins behind 3: a sell print of 2 @ 100 only shortens the queue to 1; a
    sell print of 2 @ 99.5 trades through: 2 @ 100 as maker, 2 bps of 200 = 0.04."""
    fills = BookFills(maker_fee_bps=2)
    resting = RestingOrders(fills)
    buy = rest(
        fills, book([(100.0, 3.0), (99.0, 4.0)], [(101.0, 2.0)]), order("buy", 5.0, 100.0), resting
    )
    assert buy.queue_ahead == 3.0
    assert resting.on_trade(trade("sell", 100.0, 2.0)) == ()
    assert (buy.queue_ahead, buy.remaining) == (1.0, 5.0)
    assert resting.on_trade(trade("buy", 101.0, 10.0)) == ()  # lifted the asks: not ours
    [fill] = resting.on_trade(trade("sell", 99.5, 2.0, t=7))
    assert (fill.client_order_id, fill.side, fill.ts, fill.price, fill.size) == (
        "o1",
        "buy",
        7,
        100.0,
        2.0,
    )
    assert (fill.fee, fill.liquidity) == (pytest.approx(0.04, rel=1e-12), "maker")
    assert (buy.remaining, buy.filled, buy.queue_ahead, buy.active) == (3.0, 2.0, 0.0, True)


def test_touches_consume_the_queue_ahead_and_then_fill_what_goes_beyond_it() -> None:
    """Queue 3: a touch of 2 leaves 1 ahead; one of 4 fills 4 − 1 = 3; then 1; then the last 1."""
    fills = BookFills()
    resting = RestingOrders(fills)
    buy = rest(fills, book([(100.0, 3.0)], [(101.0, 1.0)]), order("buy", 5.0, 100.0), resting)
    got = [sizes(resting.on_trade(trade("sell", 100.0, v))) for v in (2.0, 4.0, 1.0, 5.0)]
    assert got == [[], [("o1", 100.0, 3.0)], [("o1", 100.0, 1.0)], [("o1", 100.0, 1.0)]]
    assert (buy.filled, buy.remaining, buy.active, len(resting)) == (5.0, 0.0, False, 0)
    assert resting.on_trade(trade("sell", 99.0, 5.0)) == ()


def test_a_level_shrinking_below_the_queue_caps_it_and_added_size_queues_behind() -> None:
    """Queue 5; the level drops to 2 (cancels ahead of us); it grows to 8 (behind us); a touch
    of 3 fills 3 − 2 = 1 (without the cap the queue would still hold 2 and nothing fills)."""
    fills = BookFills()
    resting = RestingOrders(fills)
    buy = rest(fills, book([(100.0, 5.0)], [(101.0, 1.0)]), order("buy", 2.0, 100.0), resting)
    resting.on_book(change(bids=[(100.0, 2.0)]))
    assert buy.queue_ahead == 2.0
    resting.on_book(change(bids=[(100.0, 8.0), (99.0, 0.5)], asks=[(100.0, 1.0)]))
    assert buy.queue_ahead == 2.0
    assert sizes(resting.on_trade(trade("sell", 100.0, 3.0))) == [("o1", 100.0, 1.0)]
    assert buy.queue_ahead == 0.0


def test_a_reset_caps_the_queue_at_the_new_level_or_empties_it() -> None:
    fills = BookFills()
    resting = RestingOrders(fills)
    b = book([(100.0, 5.0), (99.0, 5.0)], [(101.0, 4.0)])
    buy = rest(fills, b, order("buy", 1.0, 100.0, cid="b"), resting)
    sell = rest(fills, b, order("sell", 1.0, 101.0, cid="s"), resting)
    resting.on_book(change([(100.0, 1.5)], [(102.0, 1.0)], reset=True))
    assert (buy.queue_ahead, sell.queue_ahead) == (1.5, 0.0)


def test_the_sell_side_mirrors_the_buy_side() -> None:
    """Sell 4 @ 101 behind 2: a buy print of 1 @ 101 leaves 1 ahead; a sell print touching
    101 is not ours; a buy print of 3 @ 101.5 fills 3 @ 101 (1 bps of 303 = 0.0303); a buy
    print of 2 @ 101 fills the last 1."""
    fills = BookFills(maker_fee_bps=1)
    resting = RestingOrders(fills)
    sell = rest(
        fills,
        book([(100.0, 1.0)], [(101.0, 2.0), (102.0, 3.0)]),
        order("sell", 4.0, 101.0),
        resting,
    )
    assert sell.queue_ahead == 2.0
    assert resting.on_trade(trade("buy", 101.0, 1.0)) == ()
    assert resting.on_trade(trade("sell", 101.0, 5.0)) == ()
    assert sell.queue_ahead == 1.0
    [fill] = resting.on_trade(trade("buy", 101.5, 3.0))
    assert (fill.side, fill.price, fill.size, fill.liquidity) == ("sell", 101.0, 3.0, "maker")
    assert fill.fee == pytest.approx(0.0303, rel=1e-12)
    assert sizes(resting.on_trade(trade("buy", 101.0, 2.0))) == [("o1", 101.0, 1.0)]
    assert not sell.active


def test_our_orders_share_a_print_in_price_then_time_priority() -> None:
    """Buys: a 2 @ 101 (queue 0), b 4 @ 100 and then c 1 @ 100 (queue 3 each). A sell print
    of 5 @ 99 goes through all three: a takes 2, b the 3 left, c nothing. Then a touch of 3 @
    100: b's last 1, and c gets the 2 left (its queue ahead left with the print through)."""
    fills = BookFills()
    resting = RestingOrders(fills)
    b = book([(100.0, 3.0)], [(102.0, 5.0)])
    a = rest(fills, b, order("buy", 2.0, 101.0, cid="a"), resting)
    rest(fills, b, order("buy", 4.0, 100.0, cid="b"), resting)
    c = rest(fills, b, order("buy", 1.0, 100.0, cid="c"), resting)
    assert (a.queue_ahead, c.queue_ahead) == (0.0, 3.0)
    assert sizes(resting.on_trade(trade("sell", 99.0, 5.0))) == [
        ("a", 101.0, 2.0),
        ("b", 100.0, 3.0),
    ]
    assert sizes(resting.on_trade(trade("sell", 100.0, 3.0))) == [
        ("b", 100.0, 1.0),
        ("c", 100.0, 1.0),
    ]
    assert len(resting) == 0


def test_a_touch_reaches_our_second_order_only_after_our_first() -> None:
    """b 4 and then c 1 @ 100, both behind 3: a touch of 5 fills b 2 and stops short of c."""
    fills = BookFills()
    resting = RestingOrders(fills)
    b = book([(100.0, 3.0)], [(102.0, 5.0)])
    rest(fills, b, order("buy", 4.0, 100.0, cid="b"), resting)
    c = rest(fills, b, order("buy", 1.0, 100.0, cid="c"), resting)
    assert sizes(resting.on_trade(trade("sell", 100.0, 5.0))) == [("b", 100.0, 2.0)]
    assert (c.filled, c.queue_ahead) == (0.0, 0.0)


def test_each_maker_fill_goes_down_to_the_lot_and_a_fill_below_the_minimum_is_lost() -> None:
    """Lot 0.5, minimum 1, buy 2.5 behind 1: a touch of 2.7 reaches 1.7 → fills 1.5; a touch of
    0.8 → 0.5 < 1: nothing; a print through of 0.9 → 0.5: nothing; a touch of 1.2 → the last 1."""
    fills = BookFills(lot=0.5, min_size=1.0)
    resting = RestingOrders(fills)
    buy = rest(fills, book([(100.0, 1.0)], [(101.0, 1.0)]), order("buy", 2.5, 100.0), resting)
    prints = [(100.0, 2.7), (100.0, 0.8), (99.5, 0.9), (100.0, 1.2)]
    got = [sizes(resting.on_trade(trade("sell", p, v))) for p, v in prints]
    assert got == [[("o1", 100.0, 1.5)], [], [], [("o1", 100.0, 1.0)]]
    assert not buy.active


def test_a_remainder_no_fill_can_take_stops_resting_and_is_reported() -> None:
    fills = BookFills(lot=0.5, min_size=1.0)
    resting = RestingOrders(fills)
    buy = rest(fills, book([], [(101.0, 1.0)]), order("buy", 2.5, 100.0), resting)
    assert sizes(resting.on_trade(trade("sell", 100.0, 2.0))) == [("o1", 100.0, 2.0)]
    assert (buy.active, buy.remaining, len(resting)) == (False, 0.5, 0)


def test_a_print_far_from_every_order_changes_nothing() -> None:
    fills = BookFills()
    resting = RestingOrders(fills)
    b = book([(100.0, 3.0)], [(101.0, 3.0)])
    buy = rest(fills, b, order("buy", 1.0, 100.0, cid="b"), resting)
    sell = rest(fills, b, order("sell", 1.0, 101.0, cid="s"), resting)
    assert resting.on_trade(trade("sell", 100.5, 9.0)) == ()
    assert resting.on_trade(trade("buy", 100.5, 9.0)) == ()
    assert (buy.queue_ahead, sell.queue_ahead) == (3.0, 3.0)


def test_a_cancelled_order_leaves_the_book() -> None:
    fills = BookFills()
    resting = RestingOrders(fills)
    buy = rest(fills, book([], [(101.0, 1.0)]), order("buy", 1.0, 100.0), resting)
    with pytest.raises(UsageError):
        resting.add(buy)
    assert resting.cancel("o1") is buy and not buy.active
    assert resting.cancel("o1") is None
    assert resting.on_trade(trade("sell", 99.0, 5.0)) == ()


# -- placement --------------------------------------------------------------------------------

PLACE = book([(99.0, 4.0)], ASKS)


def test_a_marketable_limit_takes_up_to_its_price_and_rests_the_rest() -> None:
    """Buy 5 @ 101: 1@100 + 2@101 = 302 taken (10 bps: 0.302), 2 rest @ 101 with nothing ahead."""
    fills = BookFills(taker_fee_bps=10)
    placed = fills.place(order("buy", 5.0, 101.0), PLACE)
    assert placed.taken.fills == [(100.0, 1.0), (101.0, 2.0)]
    assert placed.taken.fee == pytest.approx(0.302, rel=1e-12)
    assert placed.resting is not None
    assert (placed.resting.price, placed.resting.remaining, placed.resting.queue_ahead) == (
        101.0,
        2.0,
        0.0,
    )


def test_ioc_takes_what_is_marketable_on_arrival_and_cancels_the_rest() -> None:
    fills = BookFills()
    placed = fills.place(order("buy", 5.0, 101.0, tif="ioc"), PLACE)
    assert (placed.taken.filled, placed.taken.unfilled, placed.resting) == (3.0, 2.0, None)
    missed = fills.place(order("buy", 5.0, 99.5, tif="ioc"), PLACE)
    assert (missed.taken.filled, missed.taken.unfilled, missed.resting, missed.rejected) == (
        0.0,
        5.0,
        None,
        "",
    )


def test_post_only_that_would_take_is_rejected_and_otherwise_rests() -> None:
    fills = BookFills()
    placed = fills.place(order("buy", 1.0, 100.0, tif="post_only"), PLACE)
    assert (placed.rejected, placed.taken.filled, placed.resting) == (
        "post-only order would take liquidity",
        0.0,
        None,
    )
    assert rest(fills, PLACE, order("buy", 1.0, 99.0, tif="post_only")).queue_ahead == 4.0
    assert rest(fills, PLACE, order("sell", 1.0, 100.5, tif="post_only")).queue_ahead == 0.0


def test_limit_prices_land_on_the_books_own_level_keys() -> None:
    """3 × 0.1 is 0.30000000000000004, not the 0.3 a venue's "0.3" parses to."""
    fills = BookFills(tick=0.1)
    b = book([(0.3, 7.0)], [(0.5, 1.0)])
    for price in (0.3, 0.37, 3 * 0.1):
        assert rest(fills, b, order("buy", 1.0, price)).price == 0.3
    resting = RestingOrders(fills)
    buy = rest(fills, b, order("buy", 1.0, 0.3), resting)
    assert (buy.queue_ahead, resting.on_trade(trade("sell", 0.3, 1.0))) == (7.0, ())
    assert fills.price(0.41, "sell", "limit") == 0.5  # a sell limit goes up to the tick


def test_only_market_and_limit_orders_and_target_orders_with_a_size() -> None:
    fills = BookFills()
    with pytest.raises(UsageError, match="not 'stop'"):
        fills.place(order("buy", 1.0, 100.0, type="stop"), PLACE)
    with pytest.raises(UsageError, match="target"):
        fills.place(order("buy", None, target=0.5), PLACE)
    assert fills.place(order("buy", None, target=0.5), PLACE, size=1.0).taken.filled == 1.0


@pytest.mark.parametrize(
    "bad", [{"latency_ms": -1}, {"tick": float("nan")}, {"taker_fee_bps": 10_000}, {"lot": "1"}]
)
def test_bad_terms_are_usage_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        BookFills(**bad)


def test_latency_is_kept_in_microseconds() -> None:
    assert (BookFills().latency_us, BookFills(latency_ms=2.5).latency_us) == (0, 2_500)


# -- properties -------------------------------------------------------------------------------

sizes_st = st.floats(0.01, 50.0, allow_nan=False)
levels_st = st.lists(
    st.tuples(st.integers(1, 2_000), sizes_st), min_size=0, max_size=12, unique_by=lambda lv: lv[0]
)


@settings(max_examples=300, deadline=None)
@given(raw=levels_st, size=sizes_st, side=st.sampled_from(["buy", "sell"]), bps=st.floats(0, 50))
def test_a_walk_never_takes_more_than_asked_or_held_and_averages_within_its_levels(
    raw: list[tuple[int, float]], size: float, side: Side, bps: float
) -> None:
    levels = sorted(((p / 10, s) for p, s in raw), reverse=side == "sell")
    walk = BookFills(taker_fee_bps=bps).walk(side, size, levels)
    held = sum(s for _, s in levels)
    assert walk.filled <= size * (1 + 1e-12) and walk.filled <= held * (1 + 1e-12)
    assert walk.filled + walk.unfilled == pytest.approx(size, rel=1e-12)
    assert all(take <= avail for (_, take), (_, avail) in zip(walk.fills, levels, strict=False))
    assert walk.fee == pytest.approx(walk.notional * bps / 10_000, rel=1e-12, abs=1e-12)
    if walk.unfilled > 1e-9:
        assert len(walk.fills) == len(levels)  # only an exhausted book leaves something over
    if walk.fills:
        touched = [p for p, _ in walk.fills]
        assert walk.average_price is not None
        assert min(touched) * (1 - 1e-12) <= walk.average_price <= max(touched) * (1 + 1e-12)


event_st = st.one_of(
    st.tuples(st.just("trade"), st.sampled_from(["buy", "sell"]), st.integers(-3, 3), sizes_st),
    st.tuples(
        st.just("book"), st.sampled_from(["bid", "ask"]), st.integers(-3, 3), st.floats(0, 20)
    ),
)


def play(resting: RestingOrders, events: list[tuple[str, str, int, float]]) -> list[Fill]:
    out: list[Fill] = []
    for kind, side, offset, size in events:
        price = 100.0 + offset / 2
        if kind == "trade":
            fills = resting.on_trade(trade(side, price, size))
            assert sum(f.size for f in fills) <= size * (1 + 1e-9)  # a print is not reused
            out += fills
        else:
            resting.on_book(
                change(
                    [(price, size)] if side == "bid" else [],
                    [(price, size)] if side == "ask" else [],
                )
            )
    return out


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(event_st, max_size=40),
    orders=st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(-3, 3), sizes_st),
        min_size=1,
        max_size=4,
    ),
    lot=st.sampled_from([0.0, 0.25]),
    min_size=st.sampled_from([0.0, 0.5]),
)
def test_resting_orders_fill_at_their_price_and_never_beyond_their_size(
    events: list[tuple[str, str, int, float]],
    orders: list[tuple[Side, int, float]],
    lot: float,
    min_size: float,
) -> None:
    fills = BookFills(lot=lot, min_size=min_size)
    resting = RestingOrders(fills)
    b = book([(99.0 + i / 2, 3.0) for i in range(5)], [(101.5 + i / 2, 3.0) for i in range(5)])
    placed = {}
    for i, (side, offset, size) in enumerate(orders):
        price = (99.0 + offset / 2) if side == "buy" else (101.0 + offset / 2)
        p = fills.place(order(side, size, price, cid=str(i), tif="post_only"), b)
        if p.resting is not None:
            resting.add(p.resting)
            placed[str(i)] = p.resting
    got = play(resting, events)
    for f in got:
        mine = placed[f.client_order_id]
        assert f.price == mine.price and f.liquidity == "maker"
        assert f.size >= min_size and f.size > 0
        if lot:
            assert f.size / lot == pytest.approx(round(f.size / lot), abs=1e-9)
    for cid, mine in placed.items():
        total = sum(f.size for f in got if f.client_order_id == cid)
        assert total == pytest.approx(mine.filled, rel=1e-12)
        assert mine.filled <= (mine.filled + mine.remaining) * (1 + 1e-12)
        assert mine.remaining >= -1e-12 and mine.queue_ahead >= -1e-9


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(event_st, max_size=40), queues=st.tuples(st.integers(0, 10), st.integers(0, 10))
)
def test_a_longer_queue_ahead_never_fills_more(
    events: list[tuple[str, str, int, float]], queues: tuple[int, int]
) -> None:
    short, long = sorted(queues)
    filled = []
    for queue in (short, long):
        resting = RestingOrders(BookFills(lot=0.25))
        buy = RestingLimit(order("buy", 5.0, 100.0), 100.0, 5.0, float(queue))
        resting.add(buy)
        play(resting, events)
        filled.append(buy.filled)
    assert filled[0] >= filled[1] - 1e-9


@given(
    size=st.floats(0, 100),
    lot=st.sampled_from([0.0, 0.001, 0.1, 0.5]),
    min_size=st.sampled_from([0.0, 0.01, 1.0]),
)
def test_book_and_bar_models_round_sizes_and_charge_fees_alike(
    size: float, lot: float, min_size: float
) -> None:
    book_terms = BookFills(taker_fee_bps=7, maker_fee_bps=2, lot=lot, min_size=min_size)
    bar_terms = BarFills(taker_fee_bps=7, maker_fee_bps=2, lot=lot, min_size=min_size)
    assert book_terms.size(size) == bar_terms.size(size)
    assert book_terms.fee(size, "maker") == bar_terms.fee(size, "maker")
    assert book_terms.fee(size, "taker") == bar_terms.fee(size, "taker")
