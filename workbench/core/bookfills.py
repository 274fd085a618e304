"""The book fill model: when, at which price and for how much an order fills, given the
recorded trades and order books.

A recording shows the book everyone else saw and the trades they made, not what our own
orders would have changed, so the rules take the side that cannot flatter a strategy:

- Latency: an order (or a cancel) decided at ``t`` reaches the book at ``t + latency_ms``
  and meets the book as it stood then, the latest state not after that time. The engine
  applies events in time order and asks :class:`Pending` for the items due before each
  event's time before it applies that event. Items leave in the order they were decided.
- A market order walks the opposite side, best level first, taking each level's displayed
  size, as a taker. What the book cannot fill is reported (``Walk.unfilled``), never
  invented. The fee is the taker rate on the walk's total notional.
- A limit order that is marketable when it arrives (a buy at or above the best ask) walks
  the book up to its limit price as a taker. IOC cancels the rest, GTC rests it, and a
  post-only order that would take is rejected.
- A resting order joins the back of its level: the queue ahead is the displayed size at its
  price and side when it arrives (0 if there is no such level). Size added to the level
  later queues behind it.
- Only prints whose taker is on the other side reach a resting order (a sell print reaches
  a buy limit). The other prints traded against the far side of the book.
- A print AT the limit price (a touch) first consumes the queue ahead. Only its volume
  beyond the queue fills the order: under price-time priority that is the volume that
  would have reached it. A touch that the queue absorbs fills nothing.
- A print THROUGH the limit price (a sell print below a buy limit) shows that the level
  was emptied: the queue ahead is gone, and the order fills up to the print's size, the
  volume that would have traded with it first had it been there.
- Our orders share a print's volume in priority order (best price first, then first
  placed), each taking from what the ones before it left. One print never fills more than
  its size, and every maker fill is at the order's limit price.
- When a book update shrinks the level below the queue ahead, the queue is capped at the
  level's new size. Who left is not known, so cancels are charged to the orders behind
  ours for as long as the level's size allows. A reset updates every level: a level
  missing from it has size 0.
- Fees are basis points of each fill's notional, at the maker or the taker rate. Sizes are
  rounded down to the ``lot`` and orders below ``min_size`` are rejected. Each maker fill
  is rounded down to the lot too, and a fill below ``min_size`` does not happen: that
  volume is lost to the order. An order whose remainder cannot make a fill any more stops
  resting, and the remainder is reported unfilled. Limit prices go on the ``tick`` grid as
  in the bar model, at the float the venue's decimal text parses to, so they are the book's
  own level keys.

What the model does not see, and which way that errs:

- No market impact: our fills take nothing out of the recorded book or the prints, so a
  second order right after a first meets the same levels again. That errs optimistic.
- Most venues publish the book and the trades on separate streams. If the book update a
  trade caused is recorded before the print, the print is counted against the queue a
  second time while the cap binds (when less than the print stands behind us). That errs
  optimistic: the order fills earlier than it should.
- A fixed-depth recording deletes the levels it pushes out of its depth. An order resting
  beyond the recorded depth reads that as its level being emptied (queue 0). That errs
  optimistic: keep resting orders within the recorded depth.
- The far side of the book moving through a resting order (an ask posted below our bid)
  does not fill it; only prints do. That errs pessimistic.
- Stop orders are not modelled here.

Every call is pure: no I/O, no clock. Fills are stamped with the print's receipt time
``recv_ts``, the time the engine's clock runs on.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Generic, TypeVar

import msgspec

from workbench.core.book import OrderBook
from workbench.core.fills import Terms
from workbench.errors import UsageError
from workbench.events import BookChange, Fill, Level, Order, Side, Trade

T = TypeVar("T")


class Walk(msgspec.Struct, frozen=True, gc=False):
    """An order's walk through the book: ``fills`` holds the (price, size) taken at each
    level, best first. ``size`` is the size asked for, on the lot. ``fee`` is the taker fee
    on the total ``notional``. ``unfilled`` is what the book could not fill."""

    size: float
    fills: list[Level]
    filled: float
    notional: float
    fee: float
    unfilled: float

    @property
    def average_price(self) -> float | None:
        return self.notional / self.filled if self.filled else None


class RestingLimit:
    """A limit order resting in the simulated book: what is left of it and the displayed size
    ahead of it in its level's queue. ``active`` turns False once it has left the book
    (filled, cancelled, or left with a remainder no fill can take)."""

    __slots__ = ("active", "filled", "order", "price", "queue_ahead", "remaining")

    def __init__(self, order: Order, price: float, size: float, queue_ahead: float) -> None:
        self.order = order
        self.price = price
        self.remaining = size
        self.queue_ahead = queue_ahead
        self.filled = 0.0
        self.active = True

    def __repr__(self) -> str:
        return (
            f"RestingLimit({self.order.client_order_id!r}, {self.order.side} @ {self.price}, "
            f"remaining={self.remaining}, queue_ahead={self.queue_ahead})"
        )


class Placement(msgspec.Struct, frozen=True, gc=False):
    """What an order did when it reached the book. ``taken`` is the liquidity it took at once
    (nothing for an order that was not marketable). ``resting`` is the part to add to the
    symbol's :class:`RestingOrders`, or None. ``rejected`` says why the order was refused;
    it is empty when the order was accepted."""

    taken: Walk
    resting: RestingLimit | None
    rejected: str = ""


def takeable(book: OrderBook, side: Side) -> Iterator[Level]:
    """The levels an order on ``side`` takes from, best first (the asks for a buy). They are
    read a few at a time, because a walk usually stops near the top of a deep book; the
    book must not change while this is being iterated."""
    bids, asks = book.size_maps()
    sizes, which = (asks, 1) if side == "buy" else (bids, 0)
    start, n = 0, 8
    while True:
        prices = book.top_prices(n)[which]
        for price in prices[start:]:
            yield price, sizes[price]
        if len(prices) < n:
            return
        start, n = n, n * 8


@dataclass(frozen=True)
class BookFills(Terms):
    """Costs, latency and the instrument's increments; the rules are in the module docstring."""

    taker_fee_bps: float = 0.0
    maker_fee_bps: float = 0.0
    latency_ms: float = 0.0
    tick: float = 0.0
    lot: float = 0.0
    min_size: float = 0.0

    def __post_init__(self) -> None:
        self._check("taker_fee_bps", "maker_fee_bps", "latency_ms", "tick", "lot", "min_size")

    @property
    def latency_us(self) -> int:
        return round(self.latency_ms * 1000)

    @cached_property
    def _tick_decimals(self) -> int:
        return max(0, -int(Decimal(repr(self.tick)).normalize().as_tuple().exponent))

    def price(self, price: float, side: str, kind: str) -> float:
        """As in the bar model, then snapped to the tick's decimals. A book keys its levels by
        the floats that the venue's decimal text parses to; ``3 * 0.1`` is not one of them."""
        on_grid = super().price(price, side, kind)
        return round(on_grid, self._tick_decimals) if self.tick else on_grid

    def walk(
        self, side: Side, size: float, levels: Iterable[Level], limit: float | None = None
    ) -> Walk:
        """A ``side`` order of ``size`` (rounded down to the lot) taking ``levels``, the
        opposite side best first, down to a buy's or up to a sell's ``limit`` if given."""
        wanted = self.size(size)
        need, filled, notional = wanted, 0.0, 0.0
        fills: list[Level] = []
        buy = side == "buy"
        for price, available in levels if wanted else ():
            if limit is not None and (price > limit if buy else price < limit):
                break
            take = available if available < need else need
            fills.append((price, take))
            filled += take
            notional += price * take
            need -= take
            if need <= 0.0:  # exactly 0.0 once a level covers what was left
                break
        return Walk(wanted, fills, filled, notional, self.fee(notional, "taker"), need)

    def place(self, order: Order, book: OrderBook, *, size: float | None = None) -> Placement:
        """``order`` as it reaches ``book`` at its due time: a market order walks the book; a
        limit order takes what is marketable and rests the rest as its time in force says.
        ``size`` overrides ``order.size``: a target order passes the size the engine worked
        out from its target."""
        side = order.side
        requested = order.size if size is None else size
        if requested is None:
            raise UsageError("a target order reaches the book with the size its target gives")
        wanted = self.size(requested)
        if not wanted:
            return Placement(_untaken(0.0), None, "size below the instrument's minimum or lot")
        if order.type == "market":
            return Placement(self.walk(side, wanted, takeable(book, side)), None)
        if order.type != "limit" or order.price is None:
            raise UsageError(f"the book model fills market and limit orders, not {order.type!r}")
        limit = self.price(order.price, side, "limit")
        best = book.best_ask_price if side == "buy" else book.best_bid_price
        if best is not None and (best <= limit if side == "buy" else best >= limit):
            if order.tif == "post_only":
                return Placement(_untaken(wanted), None, "post-only order would take liquidity")
            taken = self.walk(side, wanted, takeable(book, side), limit)
        else:
            taken = _untaken(wanted)
        rest = self.size(taken.unfilled)
        if order.tif == "ioc" or not rest:
            return Placement(taken, None)
        bids, asks = book.size_maps()
        queue = (bids if side == "buy" else asks).get(limit, 0.0)
        return Placement(taken, RestingLimit(order, limit, rest, queue))


def _untaken(size: float) -> Walk:
    return Walk(size, [], 0.0, 0.0, 0.0, size)


class Pending(Generic[T]):
    """Orders and cancels on their way to the book. Each one is due ``latency_us`` after it
    was decided. :meth:`release` hands it over once the engine's time passes its due time,
    in the order the items were decided."""

    __slots__ = ("_last_due", "_queue", "latency_us")

    def __init__(self, latency_us: int) -> None:
        if latency_us < 0:
            raise UsageError(f"latency must be >= 0 µs, got {latency_us}")
        self.latency_us = latency_us
        self._queue: deque[tuple[int, T]] = deque()
        self._last_due: int | None = None

    def push(self, item: T, decided_us: int) -> int:
        """Send ``item``, decided at ``decided_us``; returns its due time."""
        due = decided_us + self.latency_us
        if self._last_due is not None and due < self._last_due:
            raise UsageError(f"decided at {decided_us}, before the last item: time runs forward")
        self._last_due = due
        self._queue.append((due, item))
        return due

    def release(self, now_us: int) -> tuple[T, ...]:
        """The items due before ``now_us``, oldest first. Call it with an event's time before
        applying that event, so an item due at ``t`` meets the book with every event up to
        and including ``t`` applied."""
        queue = self._queue
        if not queue or queue[0][0] >= now_us:
            return ()
        out: list[T] = []
        while queue and queue[0][0] < now_us:
            out.append(queue.popleft()[1])
        return tuple(out)

    @property
    def next_due(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)


class RestingOrders:
    """The limit orders resting in one symbol's simulated book, indexed by side and price.
    A print that is on the far side of all of them costs one comparison."""

    __slots__ = (
        "_best_buy",
        "_best_sell",
        "_buy_prices",
        "_buys",
        "_by_id",
        "_sell_prices",
        "_sells",
        "fills",
    )

    def __init__(self, fills: BookFills) -> None:
        self.fills = fills
        self._buys: dict[float, list[RestingLimit]] = {}
        self._sells: dict[float, list[RestingLimit]] = {}
        self._buy_prices: list[float] = []  # ascending on both sides, as in OrderBook
        self._sell_prices: list[float] = []
        self._best_buy = -math.inf
        self._best_sell = math.inf
        self._by_id: dict[str, RestingLimit] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, resting: RestingLimit) -> None:
        """Rest ``resting`` (from :meth:`BookFills.place`), behind our earlier orders at its
        price."""
        order_id = resting.order.client_order_id
        if order_id in self._by_id:
            raise UsageError(f"order {order_id!r} is already resting")
        self._by_id[order_id] = resting
        buy = resting.order.side == "buy"
        levels, prices = (self._buys, self._buy_prices) if buy else (self._sells, self._sell_prices)
        queue = levels.get(resting.price)
        if queue is None:
            levels[resting.price] = [resting]
            insort(prices, resting.price)
            self._set_best(buy)
        else:
            queue.append(resting)

    def cancel(self, client_order_id: str) -> RestingLimit | None:
        """Take the order out of the book; None if it is not resting (any more)."""
        resting = self._by_id.get(client_order_id)
        if resting is not None:
            self._remove(resting)
        return resting

    def on_trade(self, trade: Trade) -> tuple[Fill, ...]:
        """The maker fills ``trade`` gives our resting orders."""
        if trade.side == "sell":
            if trade.price > self._best_buy:
                return ()
            return self._match(trade, self._buys, reversed(self._buy_prices), True)
        if trade.price < self._best_sell:
            return ()
        return self._match(trade, self._sells, iter(self._sell_prices), False)

    def on_book(self, change: BookChange) -> None:
        """Cap the queues ahead at the sizes ``change`` leaves their levels at."""
        if not self._by_id:
            return
        if change.reset:
            bids, asks = dict(change.bids), dict(change.asks)
            for price, queue in self._buys.items():
                _cap(queue, bids.get(price, 0.0))
            for price, queue in self._sells.items():
                _cap(queue, asks.get(price, 0.0))
            return
        buys, sells = self._buys, self._sells  # one loop per side: this runs on every change
        if buys:
            for price, size in change.bids:
                here = buys.get(price)
                if here is not None:
                    _cap(here, size)
        if sells:
            for price, size in change.asks:
                here = sells.get(price)
                if here is not None:
                    _cap(here, size)

    def _match(
        self,
        trade: Trade,
        levels: dict[float, list[RestingLimit]],
        prices: Iterator[float],
        buy: bool,
    ) -> tuple[Fill, ...]:
        fills, price, budget = self.fills, trade.price, trade.size
        out: list[Fill] = []
        finished: list[RestingLimit] = []
        for level in prices:  # best first: a buy's highest price, a sell's lowest
            if level < price if buy else level > price:
                break
            through = level != price
            for resting in levels[level]:
                if through:
                    reach = budget
                    resting.queue_ahead = 0.0
                elif budget <= resting.queue_ahead:
                    resting.queue_ahead -= budget  # the whole print went to the queue ahead
                    continue
                else:
                    reach = budget - resting.queue_ahead
                    resting.queue_ahead = 0.0
                size = min(fills.size(reach), resting.remaining)
                if not size:
                    continue
                budget -= size
                resting.remaining -= size
                resting.filled += size
                order = resting.order
                out.append(
                    Fill(
                        order.client_order_id,
                        order.symbol,
                        order.side,
                        trade.recv_ts,
                        level,
                        size,
                        fills.fee(level * size, "maker"),
                        "maker",
                    )
                )
                if not fills.size(resting.remaining):
                    finished.append(resting)
        for resting in finished:  # after the loop: it iterates the lists _remove edits
            self._remove(resting)
        return tuple(out)

    def _remove(self, resting: RestingLimit) -> None:
        resting.active = False
        del self._by_id[resting.order.client_order_id]
        buy = resting.order.side == "buy"
        levels, prices = (self._buys, self._buy_prices) if buy else (self._sells, self._sell_prices)
        queue = levels[resting.price]
        queue.remove(resting)
        if not queue:
            del levels[resting.price]
            del prices[bisect_left(prices, resting.price)]
            self._set_best(buy)

    def _set_best(self, buy: bool) -> None:
        if buy:
            self._best_buy = self._buy_prices[-1] if self._buy_prices else -math.inf
        else:
            self._best_sell = self._sell_prices[0] if self._sell_prices else math.inf


def _cap(queue: list[RestingLimit], size: float) -> None:
    for resting in queue:
        if size < resting.queue_ahead:
            resting.queue_ahead = size
