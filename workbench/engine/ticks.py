"""The event engine on trades and book changes: one strategy, one symbol, orders filled by
the book fill model (:mod:`workbench.core.bookfills`, whose rules this engine applies).

Events are one symbol's :class:`~workbench.events.Trade` and
:class:`~workbench.events.BookChange`, in the order the feed applied them (what
:func:`workbench.replay` reads back), and from a live source the :class:`ClockTick` that
moves the clock on a quiet market. The clock runs on their receipt time ``recv_ts``; an
event stamped before the clock (a live feed's receipt times can step back a little) is
taken at the clock's time, so time never runs back.

Before an event is applied, everything due before its time happens, in time order, and at
one time in this order: orders and cancels reaching the book (``latency_ms`` after they were
decided), the strategy's timers (``ctx.timer``; ``on_timer`` with the clock at the timer's
time), the account's marks. So an order due at ``t`` meets the book with every event up to
and including ``t`` applied, and a timer at ``t`` has seen all of them.

With a bar interval, the prints also make bars (:mod:`workbench.engine.livebars`): a bar
closes when the clock reaches its end, before anything else due then and before the events
stamped at that time (they belong to the next bar), and — once the strategy's warm-up has
passed — the strategy sees it in ``on_bar``, where ``ctx.indicator`` and ``ctx.history``
read the bars closed so far. A bar still open when the run ends is not closed.

Then the event. A trade gives the resting limit orders their maker fills, triggers the stop
orders it reaches, and then the strategy hears each fill (``on_fill``) and the print
(``on_trade``). A book change is applied to the book, caps the resting orders' queues, and
then the strategy hears it (``on_book``; ``ctx.book`` shows the change).

Orders, once they reach the book:

- Market and limit orders (``gtc``, ``ioc``, ``post_only``) are placed by
  :meth:`BookFills.place <workbench.core.bookfills.BookFills.place>`. What an order takes at
  once is one taker fill at the walk's average price, with the walk's fee. What the book
  could not fill of a market order, and the rest of an IOC, is cancelled; a limit's rest
  rests, and fills later from the prints.
- A stop order rests at the simulated venue and triggers on the first print at or through
  its price (a buy stop: a print >= its price). It then walks the book as it stands, as a
  market order. The print's own book update usually comes after it, so the walk can meet
  liquidity the print took: that errs optimistic.
- A target order is sized when it reaches the book (a stop: when it triggers) by
  ``target_size``, at the price it would first trade at: the touch, or a limit order's own
  price when it is not marketable.
- A cancel travels like an order: decided at ``t`` it takes the order out at ``t`` +
  latency, unless the order filled first. Until then the order is working
  (``ctx.open_orders`` lists it).

The account is marked on a grid of ``mark_interval_us`` (multiples since the epoch): first at
the grid point at or before the first event, with the starting cash, then at every grid
point with every event up to it applied, and last at the first grid point after the last
event. It is marked at the last print's price (before the first print, at the book's mid or
its one side); a flat account is worth its cash.

The run ends with the last event: what is due by its time happens, then ``on_stop`` is
called at that time. Nothing later happens — no order reaches the book, no timer fires,
and what ``on_stop`` decides does not execute — and the orders still in flight or resting
stay ``open`` in the run's records.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from workbench.clock import EventClock
from workbench.core.book import OrderBook
from workbench.core.bookfills import (
    BookFills,
    Pending,
    RestingLimit,
    RestingOrders,
    Walk,
    takeable,
)
from workbench.core.fills import Liquidity
from workbench.core.portfolio import Portfolio
from workbench.engine.bars import AT_TARGET, BELOW_LOT, OrderRecord, Run
from workbench.engine.context import Context, Series, client_order_id
from workbench.engine.livebars import LOOKBACK, NEVER, LiveBars
from workbench.errors import StrategyError, UsageError
from workbench.events import BookChange, Fill, Order, OrderType, Side, TimeInForce, Trade
from workbench.strategy.base import Strategy

NO_BARS = (
    "ctx.indicator and ctx.history read bar columns, and this trade/book run builds no bars: "
    "give it a bar interval, or keep a streaming indicator (workbench.StreamingSMA, "
    "StreamingEMA, StreamingVol or StreamingReturns) and update it in on_trade"
)
REMAINDER = "the rest is below the instrument's minimum or lot"


class Supervisor(Protocol):
    """What stands between the strategy and the broker in the runner — the risk manager, the
    intent log, the metrics — set on :attr:`TickEngine.supervisor`; a backtest has none. The
    engine asks it about each order before the order travels and tells it what became of
    it. It sees the engine it supervises (the book, the account), and may submit orders of
    its own through the engine's Context (a stop-loss closing the position)."""

    def admit(self, order: Order) -> str | None:
        """Before ``order`` travels to the book: None to let it go (the runner commits its
        intent first), or the reason it is refused (it closes ``rejected`` with it)."""
        ...

    def filled(self, fill: Fill, record: OrderRecord) -> None:
        """``fill`` was booked; ``record`` is its order after it."""
        ...

    def closed(self, record: OrderRecord) -> None:
        """An order closed: filled, cancelled or rejected (``record.status``)."""
        ...

    def marked(self, time_us: int, price: float, position: float, cash: float) -> None:
        """The account was marked at ``time_us`` (a point of the mark grid)."""
        ...


class ClockTick(msgspec.Struct, frozen=True, gc=False):
    """A live source's word that nothing received before ``recv_ts`` is still to come: on a
    quiet market too, bars close, orders arrive and timers fire on time. A recording needs
    none (its next event moves the clock), and a tick that keeps its word changes when
    things happen in real time, never what happens or the times it is stamped with. So a
    source ticks a little behind its clock, never past an event it has yet to deliver (one
    stamped earlier would be taken at the tick's time)."""

    recv_ts: int


@dataclass(frozen=True)
class TickMarks:
    """Where a trade/book run marked its account: times (µs) and the prices it used."""

    symbol: str
    end: npt.NDArray[np.int64]
    close: npt.NDArray[np.float64]


class TickEngine:
    """Runs ``strategy`` over ``events`` (one symbol's trades and book changes, in applied
    order) from ``cash``, filled by ``fills``; see the module docstring."""

    def __init__(
        self,
        strategy: Strategy,
        events: Iterable[Trade | BookChange],
        fills: BookFills,
        *,
        symbol: str,
        cash: float,
        mark_interval_us: int = 1_000_000,
        bar_interval_us: int | None = None,
    ) -> None:
        if isinstance(mark_interval_us, bool) or not isinstance(mark_interval_us, int):
            raise UsageError(f"mark_interval_us must be an integer, got {mark_interval_us!r}")
        if mark_interval_us < 1:
            raise UsageError(f"mark_interval_us must be >= 1 µs, got {mark_interval_us}")
        if bar_interval_us is None and _overrides(strategy, "on_bar"):
            raise UsageError(
                f"strategy {strategy.name} decides on bars (on_bar): give the bar interval "
                "to build them from the trades at"
            )
        self.strategy = strategy
        self.fills = fills
        self.symbol = symbol
        self.book = OrderBook()
        self.portfolio = Portfolio(symbol, cash)
        self.clock = EventClock(0)
        self._events = events
        self._cash = cash
        self._mark_us = mark_interval_us
        self._next_mark = NEVER
        self._wake = NEVER  # the earliest time something is due: an order, a timer, a mark
        self._order_due = NEVER  # when the first order or cancel in flight reaches the book
        self._pending: Pending[Order | str] = Pending(fills.latency_us)
        self._resting = RestingOrders(fills)
        self._live: dict[str, RestingLimit] = {}  # resting limit orders by client id
        self._stops: list[Order] = []  # in arrival order; edited in place (the loop holds it)
        self._buy_stop = math.inf  # the lowest buy stop: a print at or above triggers one
        self._sell_stop = -math.inf
        self._timers: list[tuple[int, int]] = []  # a heap of (time, how many were set before)
        self._timers_set = itertools.count()
        self._records: dict[str, OrderRecord] = {}
        self._open: dict[str, Order] = {}
        self._cancelling: dict[str, str] = {}  # client id -> reason, while the cancel travels
        self._fills: list[Fill] = []
        self._marks: list[float] = []  # flat: time, price, position, cash of each mark
        self._last_trade = math.nan
        self._bars = (
            None
            if bar_interval_us is None
            else LiveBars(symbol, bar_interval_us, lookback=max(LOOKBACK, 2 * strategy.warmup()))
        )
        self._warmup = strategy.warmup()
        self.supervisor: Supervisor | None = None
        self.context = Context(self)

    # -- what the Context asks ----------------------------------------------------------------
    @property
    def last_price(self) -> float:
        """The last print's price; before the first, the book's mid, or its one side (NaN
        on an empty book)."""
        if not math.isnan(self._last_trade):
            return self._last_trade
        book = self.book
        price = book.mid or book.best_bid_price or book.best_ask_price
        return math.nan if price is None else price

    def working_orders(self) -> list[Order]:
        return list(self._open.values())

    def order_book(self) -> OrderBook:
        return self.book

    def indicator(
        self, function: Callable[..., Any], args: tuple[Any, ...], source: str, keep: int
    ) -> Series:
        if self._bars is None:
            raise UsageError(NO_BARS)
        return self._bars.indicator(function, args, source, keep)

    def history(self, source: str, keep: int) -> Series:
        if self._bars is None:
            raise UsageError(NO_BARS)
        return self._bars.history(source, keep)

    def timer(self, at_us: int) -> None:
        if at_us < self.clock.us:
            raise UsageError(f"a timer at {at_us} µs is in the past (now {self.clock.us})")
        heapq.heappush(self._timers, (at_us, next(self._timers_set)))
        if at_us < self._wake:
            self._wake = at_us

    def submit(
        self,
        side: Side,
        size: float | None,
        target: float | None,
        type: OrderType,
        price: float | None,
        tif: TimeInForce,
    ) -> Order:
        if price is not None:
            price = self.fills.price(price, side, type)
        order = Order(
            client_order_id(self.strategy.name, len(self._records) + 1),
            self.symbol,
            side,
            type,
            self.clock.us,
            size=size,
            target=target,
            price=price,
            tif=tif,
        )
        self._records[order.client_order_id] = OrderRecord(order)
        self._open[order.client_order_id] = order
        refused = None if self.supervisor is None else self.supervisor.admit(order)
        if refused is not None:
            self._close(order, "rejected", refused)
        else:
            self._send(order)
        return order

    def cancel(self, client_order_id: str, reason: str) -> bool:
        if client_order_id not in self._open or client_order_id in self._cancelling:
            return False
        self._cancelling[client_order_id] = reason
        self._send(client_order_id)
        return True

    def _send(self, item: Order | str) -> None:
        due = self._pending.push(item, self.clock.us)
        if due < self._order_due:
            self._order_due = due
        if due < self._wake:
            self._wake = due

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> Run:
        events = iter(self._events)
        first = next(events, None)
        if first is None:
            raise UsageError("no trades or book changes to run on (an empty range?)")
        if not isinstance(first, (Trade, BookChange, ClockTick)):
            raise self._foreign(first)
        start = first.recv_ts
        self.clock.us = start
        opening = start - start % self._mark_us
        self._marks += (opening, math.nan, 0.0, self._cash)
        self._next_mark = self._wake = opening + self._mark_us
        self._call("on_start", None)
        self._loop(itertools.chain((first,), events))
        last = self.clock.us
        self._advance(last + 1, bars_until=last)
        self._call("on_stop", None)
        self._mark_until(self._next_mark + 1)
        return self._result()

    def _loop(self, events: Iterable[Trade | BookChange]) -> None:
        """The hot loop: what every event costs, so the rare work is in methods."""
        strategy, ctx, clock, book = self.strategy, self.context, self.clock, self.book
        resting, live, stops, symbol = self._resting, self._live, self._stops, self.symbol
        bars = self._bars
        on_trade = strategy.on_trade if _overrides(strategy, "on_trade") else None
        on_book = strategy.on_book if _overrides(strategy, "on_book") else None
        now = clock.us
        for event in events:
            if isinstance(event, Trade):
                if event.symbol != symbol:
                    raise self._foreign(event)
                t = event.recv_ts
                if t > now:
                    if t > self._wake:
                        self._advance(t)
                    now = clock.us = t
                if live:
                    self._maker(event)
                price = event.price
                if stops and (price >= self._buy_stop or price <= self._sell_stop):
                    self._trigger(price)
                self._last_trade = price
                if bars is not None:
                    opening = bars.end == NEVER
                    bars.add(event.exchange, now, price, event.size)
                    if opening and bars.end - 1 < self._wake:  # it closes at end: see _advance
                        self._wake = bars.end - 1
                if on_trade is not None:
                    try:
                        on_trade(ctx, event)
                    except Exception as exc:
                        raise self._error("on_trade", event, exc) from exc
            elif isinstance(event, BookChange) and event.symbol == symbol:
                t = event.recv_ts
                if t > now:
                    if t > self._wake:
                        self._advance(t)
                    now = clock.us = t
                _apply(book, event)
                if live:
                    resting.on_book(event)
                if on_book is not None:
                    try:
                        on_book(ctx, event)
                    except Exception as exc:
                        raise self._error("on_book", event, exc) from exc
            elif isinstance(event, ClockTick):
                t = event.recv_ts
                if t > now:
                    if t > self._wake:
                        self._advance(t)
                    now = clock.us = t
            else:
                raise self._foreign(event)

    def _advance(self, until: int, *, bars_until: int | None = None) -> None:
        """Everything due before ``until``, in time order (see the module docstring); and the
        bars that close at or before ``bars_until`` (default ``until``: an event at a bar's
        close belongs to the next bar, so the bar closes first)."""
        pending, timers, clock, bars = self._pending, self._timers, self.clock, self._bars
        last_close = until if bars_until is None else bars_until
        while True:
            order_due = self._order_due
            timer_due = timers[0][0] if timers else NEVER
            due = order_due if order_due < timer_due else timer_due
            if bars is not None and bars.end <= due and bars.end <= last_close:
                if self._next_mark < bars.end:  # marks at a bar's close come after it
                    self._mark_until(bars.end)
                clock.us = bars.end
                self._close_bar(bars)
                continue
            if due > until:
                due = until
            if self._next_mark < due:  # marks at an order's or a timer's time come after it
                self._mark_until(due)
                if self._next_mark < due or self._order_due < due:
                    continue  # the supervisor decided at a mark: what is due now?
            if due == until:
                break
            clock.us = due
            if due == order_due:
                arriving = pending.release(due + 1)
                following = pending.next_due
                self._order_due = NEVER if following is None else following
                for item in arriving:
                    self._arrive(item)
            else:
                heapq.heappop(timers)
                try:
                    self.strategy.on_timer(self.context, due)
                except Exception as exc:
                    raise self._error("on_timer", None, exc) from exc
        bar_due = NEVER if bars is None else bars.end - 1
        self._wake = min(order_due, timer_due, self._next_mark, bar_due)

    def _close_bar(self, bars: LiveBars) -> None:
        bar = bars.close()
        if bars.count > self._warmup:
            try:
                self.strategy.on_bar(self.context, bar)
            except Exception as exc:
                raise self._error("on_bar", bar, exc) from exc

    def _mark_until(self, stop: int) -> None:
        """The marks before ``stop``: nothing changes between them, unless the supervisor
        sends an order at one (then the marks stop after it, with the clock at its time)."""
        at, step, marks, portfolio = self._next_mark, self._mark_us, self._marks, self.portfolio
        price = self._last_trade
        if price != price:  # NaN: no print yet
            price = self.last_price
        position, cash = portfolio.position, portfolio.cash
        supervisor = self.supervisor
        while at < stop:
            marks += (at, price, position, cash)
            at += step
            if supervisor is not None:
                self.clock.us = at - step
                sent = self._order_due
                supervisor.marked(at - step, price, position, cash)
                if self._order_due != sent:  # it decided: the marks after wait for the order
                    break
        self._next_mark = at

    # -- orders reaching the book -------------------------------------------------------------
    def _arrive(self, item: Order | str) -> None:
        if isinstance(item, str):
            self._cancel_now(item)
            return
        order = item
        if order.type == "stop":
            if order.size is not None and not self.fills.size(order.size):
                self._close(order, "rejected", BELOW_LOT)
            else:
                self._stops.append(order)
                self._stop_bounds()
            return
        size = order.size
        if order.target is not None:
            size = self._target_size(order)
            if size is None:
                return
        placed = self.fills.place(order, self.book, size=size)
        if placed.rejected:
            self._close(order, "rejected", placed.rejected)
            return
        fill = self._take(order, placed.taken)
        if placed.resting is not None:
            self._resting.add(placed.resting)
            self._live[order.client_order_id] = placed.resting
        elif not placed.taken.unfilled:
            self._close(order, "filled", "")
        elif order.type == "market":
            self._close(order, "cancelled", _short(placed.taken))
        elif order.tif == "ioc":
            self._close(order, "cancelled", "IOC: the rest was not marketable on arrival")
        else:
            self._close(order, "cancelled", REMAINDER)
        if fill is not None:
            self._call("on_fill", fill)

    def _target_size(self, order: Order) -> float | None:
        """The size that takes the position to ``order.target``, or None (the order closed):
        at the price it would first trade at (see the module docstring)."""
        assert order.target is not None
        buy = order.side == "buy"
        best = self.book.best_ask_price if buy else self.book.best_bid_price
        limit = order.price if order.type == "limit" else None
        liquidity: Liquidity
        if limit is not None and (best is None or (best > limit if buy else best < limit)):
            price, liquidity = limit, "maker"
        elif best is not None:
            price, liquidity = best, "taker"
        else:
            self._close(order, "cancelled", f"the book had no {'asks' if buy else 'bids'}")
            return None
        portfolio = self.portfolio
        signed = self.fills.target_size(
            order.target, portfolio.equity(price), portfolio.position, price, liquidity
        )
        if not signed or (signed > 0) != buy:
            self._close(order, "cancelled", AT_TARGET)
            return None
        return abs(signed)

    def _take(self, order: Order, walk: Walk) -> Fill | None:
        """Book what ``walk`` took as one taker fill at its average price (None if nothing)."""
        if not walk.filled:
            return None
        fill = Fill(
            order.client_order_id,
            order.symbol,
            order.side,
            self.clock.us,
            walk.notional / walk.filled,
            walk.filled,
            walk.fee,
            "taker",
        )
        self._book(fill)
        return fill

    def _book(self, fill: Fill) -> None:
        self._fills.append(fill)
        self.portfolio.apply(fill)
        record = self._records[fill.client_order_id]
        before = record.filled
        record.filled = before + fill.size
        record.average_price = (
            fill.price
            if not before
            else (record.average_price * before + fill.price * fill.size) / record.filled
        )
        if self.supervisor is not None:
            self.supervisor.filled(fill, record)

    def _cancel_now(self, client_order_id: str) -> None:
        reason = self._cancelling.pop(client_order_id)
        order = self._open.get(client_order_id)
        if order is None:  # it filled (or closed) while the cancel travelled
            return
        if order.type == "stop":
            self._stops.remove(order)
            self._stop_bounds()
        elif self._live.pop(client_order_id, None) is not None:
            self._resting.cancel(client_order_id)
        self._close(order, "cancelled", reason)

    # -- what prints do -----------------------------------------------------------------------
    def _maker(self, trade: Trade) -> None:
        """The fills ``trade`` gives the resting limit orders."""
        for fill in self._resting.on_trade(trade):
            if fill.ts < self.clock.us:  # a print stamped before the clock is taken at it
                fill = msgspec.structs.replace(fill, ts=self.clock.us)
            self._book(fill)
            resting = self._live[fill.client_order_id]
            if not resting.active:
                del self._live[fill.client_order_id]
                order = resting.order
                if resting.remaining:
                    self._close(order, "cancelled", REMAINDER, fill.ts)
                else:
                    self._close(order, "filled", "", fill.ts)
            self._call("on_fill", fill)

    def _trigger(self, price: float) -> None:
        """Execute the stop orders a print at ``price`` reaches, in arrival order."""
        stops = self._stops
        hit = [o for o in stops if _reached(o, price)]
        stops[:] = [o for o in stops if not _reached(o, price)]
        self._stop_bounds()
        for order in hit:
            self._execute_stop(order)

    def _execute_stop(self, order: Order) -> None:
        if order.client_order_id not in self._open:  # an earlier stop's on_fill closed it
            return
        size = order.size
        if order.target is not None:
            size = self._target_size(order)
            if size is None:
                return
        assert size is not None
        walk = self.fills.walk(order.side, size, takeable(self.book, order.side))
        if not walk.size:
            self._close(order, "rejected", BELOW_LOT)
            return
        fill = self._take(order, walk)
        if walk.unfilled:
            self._close(order, "cancelled", _short(walk))
        else:
            self._close(order, "filled", "")
        if fill is not None:
            self._call("on_fill", fill)

    def _stop_bounds(self) -> None:
        stops = self._stops
        self._buy_stop = min((_stop_price(o) for o in stops if o.side == "buy"), default=math.inf)
        self._sell_stop = max(
            (_stop_price(o) for o in stops if o.side == "sell"), default=-math.inf
        )

    # -- records and errors -------------------------------------------------------------------
    def _close(self, order: Order, status: str, reason: str, ts: int | None = None) -> None:
        record = self._records[order.client_order_id]
        record.status, record.reason = status, reason
        record.closed_us = self.clock.us if ts is None else ts
        del self._open[order.client_order_id]
        if self.supervisor is not None:
            self.supervisor.closed(record)

    def _result(self) -> Run:
        # Times as float64 are exact: µs since the epoch stay below 2**53 until 2255.
        times, prices, position, cash = np.array(self._marks, dtype=np.float64).reshape(-1, 4).T
        # A flat account is worth its cash even before there is a price to mark at.
        equity = np.where(position != 0.0, cash + position * prices, cash)
        portfolio = self.portfolio
        return Run(
            data=TickMarks(self.symbol, times.astype(np.int64), prices.copy()),
            orders=list(self._records.values()),
            fills=self._fills,
            trips=portfolio.trips,
            equity=equity,
            position=position.copy(),
            cash=cash.copy(),
            decisions=self.context.decisions,
            fees_paid=portfolio.fees_paid,
            traded_notional=portfolio.traded_notional,
        )

    def _call(self, callback: str, event: Fill | None) -> None:
        try:
            if event is None:
                getattr(self.strategy, callback)(self.context)
            else:
                getattr(self.strategy, callback)(self.context, event)
        except Exception as exc:
            raise self._error(callback, event, exc) from exc

    def _error(self, callback: str, event: object, exc: Exception) -> StrategyError:
        when = np.datetime64(self.clock.us, "us")
        about = f" on {event!r}" if event is not None else ""
        return StrategyError(
            f"strategy {self.strategy.name} raised {type(exc).__name__}: {exc} in {callback}"
            f"{about} at {when}"
        )

    def _foreign(self, event: object) -> UsageError:
        return UsageError(
            f"the trade/book engine runs on {self.symbol}'s Trade and BookChange events and "
            f"ClockTicks, got {event!r}"
        )


def _apply(book: OrderBook, change: BookChange) -> None:
    """:func:`workbench.replay.apply_change`, with a reset built as one snapshot (a sort, not
    a sorted insert per level: most of a deep book's cost)."""
    if change.reset:
        # dict(): the last entry per price wins, as applying them in turn would leave it (a
        # depth trim's deletions follow the levels they cut).
        bids, asks = dict(change.bids), dict(change.asks)
        book.apply_snapshot(bids.items(), asks.items(), seq=change.seq, ts=change.ts)
    else:
        book.apply_delta(change.bids, change.asks)
        book.seq, book.ts = change.seq, change.ts


def _overrides(strategy: Strategy, callback: str) -> bool:
    """Whether ``strategy`` has its own ``callback``: the base's no-op is not worth a call
    per event."""
    return getattr(type(strategy), callback) is not getattr(Strategy, callback)


def _stop_price(stop: Order) -> float:
    assert stop.price is not None  # the Context gives every stop order its price
    return stop.price


def _reached(stop: Order, price: float) -> bool:
    return _stop_price(stop) <= price if stop.side == "buy" else _stop_price(stop) >= price


def _short(walk: Walk) -> str:
    if not walk.filled:
        return "the book had nothing to take"
    return f"the book held only {walk.filled:g} of {walk.size:g}"
