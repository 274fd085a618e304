"""The event engine on bars: one strategy, one symbol, orders filled by the bar fill model.

Per bar, in this order: the working orders are matched against the bar (fills are stamped
with the bar's start, and the strategy hears each in ``on_fill``); the Clock moves to the
bar's close; once the warm-up has passed the strategy sees the bar in ``on_bar``; with
``fill_at="close"`` its market orders fill at that close; the account is marked at the
close. Orders submitted during a bar work from the next one, so no decision can fill at a
price it was made from (unless ``fill_at="close"`` asks for exactly that).

A halted bar (one overlapping a window excluded from trading, ``BarData.halted``) matches no
order — working orders wait for the next bar that is not halted — and an order placed while
it is the current bar is rejected; the strategy still sees it, so its state stays current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from workbench.clock import EventClock
from workbench.core.fills import BarFills, Liquidity
from workbench.core.portfolio import Portfolio, RoundTrip
from workbench.engine.context import Context, Series, client_order_id, computed
from workbench.engine.data import BarData
from workbench.errors import StrategyError, UsageError
from workbench.events import Bar, Fill, Order, OrderType, Side, TimeInForce
from workbench.strategy.base import Strategy

if TYPE_CHECKING:
    from workbench.core.book import OrderBook

AT_TARGET = "the position was already at its target"
BELOW_LOT = "size below the instrument's minimum or lot"
HALTED = "placed on a bar excluded from trading (a data-quality window)"
FEED_BLOCK = 4096
"""Bars at a time whose indicator values become Python floats. A whole column at once would
allocate and free tens of MB a run: page faults that cost little alone, but that a sweep's
workers contend on (a 2-core VM scaled 1.93x on pure compute, 1.67x allocating)."""


@dataclass
class OrderRecord:
    """What became of an order: ``open``, ``filled``, ``cancelled`` or ``rejected``."""

    order: Order
    status: str = "open"
    reason: str = ""
    filled: float = 0.0
    average_price: float = float("nan")
    closed_us: int | None = None


class Marks(Protocol):
    """Where a run's account was marked: the symbol, each mark's time (``end``, µs) and the
    price it was marked at (``close``). :class:`BarData` is one: the bars' closes."""

    @property
    def symbol(self) -> str: ...

    @property
    def end(self) -> npt.NDArray[np.int64]: ...

    @property
    def close(self) -> npt.NDArray[np.float64]: ...


@dataclass
class Run:
    """Everything one engine run produced, in the order it happened."""

    data: Marks
    orders: list[OrderRecord]
    fills: list[Fill]
    trips: list[RoundTrip]
    equity: npt.NDArray[np.float64]  # at each mark (a bar engine's: each bar's close)
    position: npt.NDArray[np.float64]
    cash: npt.NDArray[np.float64]
    decisions: list[tuple[int, str, dict[str, Any]]]
    fees_paid: float
    traded_notional: float

    @property
    def trip_pnl(self) -> npt.NDArray[np.float64]:
        return np.array([trip.pnl for trip in self.trips], dtype=np.float64)


class BarEngine:
    """Runs ``strategy`` over ``bars`` (oldest first) from ``cash``; see the module docstring."""

    def __init__(self, strategy: Strategy, data: BarData, fills: BarFills, *, cash: float) -> None:
        if not len(data):
            raise UsageError("no bars to run on")
        self.strategy = strategy
        self.data = data
        self.fills = fills
        self.symbol = data.symbol
        self.length = len(data)
        self.clock = EventClock(int(data.ts[0]))
        self.portfolio = Portfolio(self.symbol, cash)
        self.index = -1  # the bar being processed
        self.seen = 0  # bars closed so far
        self._cash = cash
        self._changes: list[tuple[int, float, float]] = []  # (bar, position, cash) per fill
        self._records: dict[str, OrderRecord] = {}
        self._working: list[Order] = []
        self._fills: list[Fill] = []
        self._feeds: list[tuple[Callable[[float], None], npt.NDArray[np.float64]]] = []
        # The current block of bars [start, stop) and each feed's values for it.
        self._block: list[tuple[Callable[[float], None], list[float]]] = []
        self._block_start = self._block_stop = 0
        self.context = Context(self)

    # -- what the Context asks ----------------------------------------------------------------
    def indicator(
        self, function: Callable[..., Any], args: tuple[Any, ...], source: str, keep: int
    ) -> Series:
        """The indicator over the whole column at once (it is all known), each value shown
        once its bar has closed."""
        return self._feed(computed(function, self.data.column(source), args), keep)

    def history(self, source: str, keep: int) -> Series:
        return self._feed(self.data.column(source), keep)

    def _feed(self, values: npt.NDArray[np.float64], keep: int) -> Series:
        """A series of ``values`` that shows each one once its bar has closed."""
        series = Series(values[max(0, self.seen - keep) : self.seen].tolist(), keep)
        self._feeds.append((series.append, values))
        self._block.append((series.append, values[self._block_start : self._block_stop].tolist()))
        return series

    @property
    def last_price(self) -> float:
        """The last close seen (before the first, the first bar's open)."""
        data = self.data
        return float(data.close[self.seen - 1] if self.seen else data.open[0])

    def working_orders(self) -> list[Order]:
        return list(self._working)

    def order_book(self) -> OrderBook:
        raise UsageError("bars carry no order book: ctx.book needs a trade/book backtest")

    def timer(self, at_us: int) -> None:
        raise UsageError(
            "a bar strategy runs on each bar's close: timers need a trade/book backtest"
        )

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
            self.clock.time_us(),
            size=size,
            target=target,
            price=price,
            tif=tif,
        )
        self._records[order.client_order_id] = OrderRecord(order)
        if self.index >= 0 and self.data.halted[self.index]:
            self._close(order, "rejected", HALTED)
            return order
        if tif == "post_only" and price is not None:
            takes = price >= self.last_price if side == "buy" else price <= self.last_price
            if takes:
                self._close(order, "rejected", "post-only order would take liquidity")
                return order
        self._working.append(order)
        return order

    def cancel(self, client_order_id: str, reason: str) -> bool:
        record = self._records.get(client_order_id)
        if record is None or record.status != "open":
            return False
        if record.order in self._working:  # else it is being matched: _match skips it
            self._working.remove(record.order)
        self._close(record.order, "cancelled", reason)
        return True

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> Run:
        strategy, ctx, fills = self.strategy, self.context, self.fills
        first = strategy.warmup()
        on_bar = strategy.on_bar
        at_close = fills.fill_at == "close"
        clock = self.clock
        self._call("on_start", None)
        halted = self.data.halted.tolist()
        events = self.data.events()
        for start in range(0, len(events), FEED_BLOCK):
            stop = min(start + FEED_BLOCK, len(events))
            self._block_start, self._block_stop = start, stop
            block = self._block = [
                (add, values[start:stop].tolist()) for add, values in self._feeds
            ]
            for i in range(start, stop):
                bar = events[i]
                self.index = i
                if self._working and not halted[i]:
                    self._match(bar)
                clock.us = bar.end
                self.seen = i + 1
                at = i - start
                for append, values in block:
                    append(values[at])
                if i >= first:
                    try:
                        on_bar(ctx, bar)
                    except Exception as exc:
                        raise self._error("on_bar", bar, exc) from exc
                    if at_close and self._working:
                        self._fill_at_close(bar)
        self._call("on_stop", None)
        return self._result()

    def _result(self) -> Run:
        position, cash = self._account()
        portfolio = self.portfolio
        return Run(
            data=self.data,
            orders=list(self._records.values()),
            fills=self._fills,
            trips=portfolio.trips,
            equity=cash + position * self.data.close,
            position=position,
            cash=cash,
            decisions=self.context.decisions,
            fees_paid=portfolio.fees_paid,
            traded_notional=portfolio.traded_notional,
        )

    def _account(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Position and cash at each bar's close, from the changes the fills made (the
        account moves only on a fill, so the bar loop records nothing)."""
        changes = np.array(self._changes, dtype=np.float64).reshape(-1, 3)
        return at_closes(
            changes[:, 0].astype(np.int64), changes[:, 1:], (0.0, self._cash), self.length
        )

    def _match(self, bar: Bar) -> None:
        """Fill what ``bar`` fills. An ``on_fill`` may cancel orders or submit new ones: the
        new ones wait for the next bar, behind the orders still working from before."""
        working, self._working = self._working, []
        kept = []
        for order in working:
            if not self._is_open(order):
                continue
            hit = self.fills.match(order, bar)
            if hit is not None:
                self._execute(order, hit[0], hit[1], bar.ts)
            elif order.tif == "ioc":
                self._close(order, "cancelled", "IOC: not marketable at the open")
            else:
                kept.append(order)
        self._working = [o for o in kept if self._is_open(o)] + self._working

    def _is_open(self, order: Order) -> bool:
        return self._records[order.client_order_id].status == "open"

    def _fill_at_close(self, bar: Bar) -> None:
        for order in [o for o in self._working if o.type == "market"]:
            self._working.remove(order)
            self._execute(order, self.fills.slipped(bar.close, order.side), "taker", bar.end)

    def _execute(self, order: Order, price: float, liquidity: Liquidity, ts: int) -> None:
        portfolio, fills = self.portfolio, self.fills
        if order.target is not None:
            signed = fills.target_size(
                order.target, portfolio.equity(price), portfolio.position, price, liquidity
            )
            if (signed > 0) != (order.side == "buy") or not signed:
                self._close(order, "cancelled", AT_TARGET)
                return
            size = fills.size(abs(signed))
        else:
            size = fills.size(order.size or 0.0)
        if not size:
            self._close(order, "rejected", BELOW_LOT)
            return
        fill = Fill(
            order.client_order_id,
            order.symbol,
            order.side,
            ts,
            price,
            size,
            fills.fee(size * price, liquidity),
            liquidity,
        )
        self._fills.append(fill)
        portfolio.apply(fill)
        self._changes.append((self.index, portfolio.position, portfolio.cash))
        record = self._records[order.client_order_id]
        record.filled, record.average_price = size, price
        self._close(order, "filled", "", ts)
        self._call("on_fill", fill)

    def _close(self, order: Order, status: str, reason: str, ts: int | None = None) -> None:
        record = self._records[order.client_order_id]
        record.status, record.reason = status, reason
        record.closed_us = self.clock.time_us() if ts is None else ts

    def _call(self, callback: str, event: Fill | None) -> None:
        try:
            if event is None:
                getattr(self.strategy, callback)(self.context)
            else:
                getattr(self.strategy, callback)(self.context, event)
        except Exception as exc:
            raise self._error(callback, event, exc) from exc

    def _error(self, callback: str, event: object, exc: Exception) -> StrategyError:
        when = _iso(self.clock.time_us())
        about = f" on {event!r}" if event is not None else ""
        return StrategyError(
            f"strategy {self.strategy.name} raised {type(exc).__name__}: {exc} in {callback}"
            f"{about} at {when}"
        )


def at_closes(
    bars: npt.NDArray[np.int64],
    after: npt.NDArray[np.float64],
    before: tuple[float, float],
    length: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Position and cash at each of ``length`` bar closes, given the bar of each fill (in
    order) and the (position, cash) ``after`` it; ``before`` the first fill."""
    # How many fills each bar has seen: a count per bar, summed; 0 means none yet.
    seen = np.cumsum(np.bincount(bars, minlength=length)[:length])
    position = np.concatenate(([before[0]], after[:, 0])).take(seen)
    cash = np.concatenate(([before[1]], after[:, 1])).take(seen)
    return position, cash


def _iso(time_us: int) -> str:
    return str(np.datetime64(time_us, "us"))
