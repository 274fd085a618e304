"""The vectorized path: what a strategy's ``signals()`` decided, executed in compiled code.

``signals()`` gives, for every bar, the target position decided at its close (NaN: no
decision). Executing those targets is one pass over the decisions only, which
:func:`_execute` does in machine code (numba): at each decision it does what
``ctx.target(f)`` does in the event engine, fills the order by the same bar fill model
(next open or the same close, slippage, taker fee, lot and minimum size, no fill and no
order on a halted bar) and books the fill
as :class:`~workbench.core.portfolio.Portfolio` does, round trips included. Every float
operation is the engine's, in the engine's order (numba compiles IEEE arithmetic without
fast-math), so both paths give identical numbers, not merely close ones; the tests hold
them to that on a million bars.

The result is columnar (:class:`Execution`): a sweep takes its metrics straight from the
arrays; :meth:`Execution.to_run` builds the engine's objects for a full backtest result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from workbench.core.fills import BarFills
from workbench.core.portfolio import RoundTrip
from workbench.engine.bars import AT_TARGET, BELOW_LOT, OrderRecord, Run, at_closes
from workbench.engine.bars import HALTED as HALTED_REASON
from workbench.engine.data import BarData
from workbench.events import Fill, Order

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

OPEN, FILLED, CANCELLED, REJECTED, HALTED = 0, 1, 2, 3, 4
_STATUS = ("open", "filled", "cancelled", "rejected", "rejected")
_REASON = ("", "", AT_TARGET, BELOW_LOT, HALTED_REASON)


@dataclass(frozen=True)
class Execution:
    """The orders, fills and round trips of one vectorized run, as arrays, and the account
    at each bar's close (``equity``, ``position``, ``cash``)."""

    data: BarData
    strategy: str
    order_bar: Ints  # the bar whose close decided it
    order_side: Ints  # +1 buy, -1 sell
    order_target: Floats
    order_status: Ints
    order_closed: Ints  # µs, -1 while open
    fill_order: Ints  # which order each fill filled
    fill_ts: Ints
    fill_price: Floats
    fill_size: Floats
    fill_fee: Floats
    trips: Floats  # one row per round trip: direction, entry, exit, size, prices, fees, pnl
    equity: Floats
    position: Floats
    cash: Floats
    fees_paid: float
    traded_notional: float

    @property
    def trip_pnl(self) -> Floats:
        pnl: Floats = self.trips[:, 7]
        return pnl

    def to_run(self) -> Run:
        """The engine's :class:`~workbench.engine.Run` of the same run."""
        data, name = self.data, self.strategy
        orders = []
        for k, (bar, side, target, status, closed) in enumerate(
            zip(
                self.order_bar.tolist(),
                self.order_side.tolist(),
                self.order_target.tolist(),
                self.order_status.tolist(),
                self.order_closed.tolist(),
                strict=True,
            )
        ):
            order = Order(
                f"{name}-{k + 1}",
                data.symbol,
                "buy" if side > 0 else "sell",
                "market",
                int(data.end[bar]),
                target=target,
            )
            orders.append(
                OrderRecord(
                    order,
                    _STATUS[status],
                    _REASON[status],
                    closed_us=None if closed < 0 else closed,
                )
            )
        fills = []
        for k, ts, price, size, fee in zip(
            self.fill_order.tolist(),
            self.fill_ts.tolist(),
            self.fill_price.tolist(),
            self.fill_size.tolist(),
            self.fill_fee.tolist(),
            strict=True,
        ):
            record = orders[k]
            record.filled, record.average_price = size, price
            order = record.order
            fills.append(
                Fill(order.client_order_id, data.symbol, order.side, ts, price, size, fee, "taker")
            )
        trips = [
            RoundTrip(
                data.symbol,
                "long" if row[0] > 0 else "short",
                int(row[1]),
                int(row[2]),
                *row[3:],
            )
            for row in self.trips.tolist()
        ]
        return Run(
            data=data,
            orders=orders,
            fills=fills,
            trips=trips,
            equity=self.equity,
            position=self.position,
            cash=self.cash,
            decisions=[],
            fees_paid=self.fees_paid,
            traded_notional=self.traded_notional,
        )


def execute(
    data: BarData, targets: Floats, *, warmup: int, fills: BarFills, cash: float, strategy: str
) -> Execution:
    """Execute ``targets`` (one per bar, NaN for none) as ``ctx.target`` orders would be."""
    decide = np.flatnonzero(~np.isnan(targets))
    decide = decide[decide >= warmup]
    n = len(data)
    # Where each decision's order would fill, gathered here so the kernel sees fresh arrays
    # of the decisions only (a sweep worker's columns are read-only memory maps, a type the
    # kernel would otherwise be compiled again for).
    if fills.fill_at == "close":
        fill_bar, fill_price = decide, data.close[decide]
        fill_ts = clock = data.end[decide]
    else:
        fill_bar = _next_clean(data.halted)[decide + 1]  # halted bars match no order
        on = np.minimum(fill_bar, n - 1)  # past the end: never read
        fill_price, fill_ts, clock = data.open[on], data.ts[on], data.end[fill_bar - 1]
    out = _execute(
        decide,
        targets[decide],
        data.close[decide],
        data.end[decide],
        data.halted[decide],
        fill_bar,
        fill_price,
        fill_ts,
        clock,
        n,
        # floats, always: an int fee would be another signature, compiled again
        float(fills.taker_fee_bps),
        float(fills.slippage_bps),
        float(fills.lot),
        float(fills.min_size),
        float(cash),
    )
    (n_orders, n_fills, n_trips, orders, closed, fill_ints, fill_floats, trips, changes) = out[:9]
    fees_paid, traded = out[9], out[10]
    position, money = at_closes(fill_ints[:n_fills, 1], changes[:n_fills], (0.0, cash), len(data))
    return Execution(
        data=data,
        strategy=strategy,
        order_bar=orders[:n_orders, 0],
        order_side=orders[:n_orders, 1],
        order_target=targets[orders[:n_orders, 0]],
        order_status=orders[:n_orders, 2],
        order_closed=closed[:n_orders],
        fill_order=fill_ints[:n_fills, 0],
        fill_ts=fill_ints[:n_fills, 2],
        fill_price=fill_floats[:n_fills, 0],
        fill_size=fill_floats[:n_fills, 1],
        fill_fee=fill_floats[:n_fills, 2],
        trips=trips[:n_trips],
        equity=money + position * data.close,
        position=position,
        cash=money,
        fees_paid=float(fees_paid),
        traded_notional=float(traded),
    )


def _next_clean(halted: npt.NDArray[np.bool_]) -> Ints:
    """For each bar, the first bar at or after it that is not halted (``len`` if none);
    one more entry, for the bar after the last."""
    n = len(halted)
    clean = np.where(halted, n, np.arange(n))
    following: Ints = np.minimum.accumulate(np.append(clean, n)[::-1])[::-1]
    return following


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _wanted(f: float, cash: float, position: float, last: float) -> float:
    """What ``ctx.target(f)`` asks for at price ``last``: the value to buy (< 0: sell), or 0
    when the position is already there."""
    equity = cash + position * last
    wanted = f * equity - position * last
    if wanted == 0 or abs(wanted) <= 1e-9 * max(abs(equity), 1.0):
        return 0.0
    return wanted


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _execute(
    decide: Ints,
    targets: Floats,
    close: Floats,
    end: Ints,
    halted: npt.NDArray[np.bool_],
    fill_bar: Ints,
    fill_price: Floats,
    fill_time: Ints,
    fill_clock: Ints,
    n: int,
    taker_bps: float,
    slippage_bps: float,
    lot: float,
    min_size: float,
    cash: float,
) -> tuple[Any, ...]:
    """The decisions' orders, fills and round trips, booked as the engine books them. Every
    array is per decision: its bar, target, close, end and whether it is halted; the bar its
    order would fill on (``n``: none left), the raw price and time there, and the engine's
    clock when it matches (the previous bar's end)."""
    k_max = len(decide)
    orders = np.zeros((k_max, 3), dtype=np.int64)  # bar, side, status
    closed = np.full(k_max, -1, dtype=np.int64)
    fill_ints = np.zeros((k_max, 3), dtype=np.int64)  # order, bar booked at, ts
    fill_floats = np.zeros((k_max, 3))  # price, size, fee
    changes = np.zeros((k_max, 2))  # position and cash after the fill
    trips = np.zeros((k_max, 8))
    n_orders = n_fills = n_trips = 0
    factor = slippage_bps / 10_000
    rate = abs(1.0) * taker_bps / 10_000  # BarFills.fee(1.0, "taker")
    position = 0.0
    fees_paid = traded = 0.0
    # the open round trip, as Portfolio keeps it
    trip_start = 0
    direction_long = True
    entered = entered_notional = exited = exited_notional = trip_fees = realized = 0.0
    d = 0
    while d < k_max:
        i = decide[d]
        d += 1
        wanted = _wanted(targets[d - 1], cash, position, close[d - 1])  # ctx.target at i's close
        if wanted == 0:
            continue
        f = targets[d - 1]
        buy = wanted > 0
        k = n_orders
        orders[k, 0] = i
        orders[k, 1] = 1 if buy else -1
        n_orders += 1
        if halted[d - 1]:
            orders[k, 2] = HALTED
            closed[k] = end[d - 1]
            continue
        j, price, fill_ts, clock = (
            fill_bar[d - 1],
            fill_price[d - 1],
            fill_time[d - 1],
            fill_clock[d - 1],
        )
        # Decisions before the fill are on halted bars (the fill waited for a clean one):
        # placed against the account as it is, since the order has not filled yet; rejected.
        while d < k_max and decide[d] < j:
            waiting = _wanted(targets[d], cash, position, close[d])
            if waiting != 0:
                orders[n_orders, 0] = decide[d]
                orders[n_orders, 1] = 1 if waiting > 0 else -1
                orders[n_orders, 2] = HALTED
                closed[n_orders] = end[d]
                n_orders += 1
            d += 1
        if j >= n:
            continue  # no bar left to fill on: it stays open
        price = price * (1 + factor) if buy else price * (1 - factor)
        # BarFills.target_size at the fill
        if f == 0:
            signed = -position
        else:
            wanted = f * (cash + position * price) - position * price
            if wanted == 0:
                signed = 0.0
            else:
                direction = 1.0 if wanted > 0 else -1.0
                signed = wanted / (price * (1 + direction * f * rate))
        if (signed > 0) != buy or not signed:
            orders[k, 2] = CANCELLED
            closed[k] = clock
            continue
        size = abs(signed)
        if lot:
            size = np.floor(size / lot + 1e-9) * lot
        if not (size >= min_size and size > 0):
            orders[k, 2] = REJECTED
            closed[k] = clock
            continue
        fee = abs(size * price) * taker_bps / 10_000
        orders[k, 2] = FILLED
        closed[k] = fill_ts
        m = n_fills
        fill_ints[m, 0], fill_ints[m, 1], fill_ints[m, 2] = k, j, fill_ts
        fill_floats[m, 0], fill_floats[m, 1], fill_floats[m, 2] = price, size, fee
        n_fills += 1
        # Portfolio.apply
        signed = size if buy else -size
        cash -= signed * price + fee
        fees_paid += fee
        traded += size * price
        closing = 0.0
        if position and (position > 0) != (signed > 0):
            closing = min(abs(signed), abs(position))
        opening = abs(signed) - closing
        if opening <= 1e-12 * size:
            opening = 0.0
        if closing:
            share = closing / size
            toward = 1.0 if position > 0 else -1.0
            realized += toward * closing * (price - entered_notional / entered)
            exited += closing
            exited_notional += closing * price
            trip_fees += fee * share
            position -= toward * closing
            if abs(position) <= 1e-12 * max(1.0, closing):
                position = 0.0
                row = trips[n_trips]
                row[0] = 1.0 if direction_long else -1.0
                row[1], row[2] = trip_start, fill_ts
                row[3] = entered
                row[4] = entered_notional / entered
                row[5] = exited_notional / exited
                row[6] = trip_fees
                row[7] = realized - trip_fees
                n_trips += 1
                entered = entered_notional = exited = exited_notional = 0.0
                trip_fees = realized = 0.0
        if opening:
            if not position:
                trip_start = fill_ts
                direction_long = signed > 0
            entered += opening
            entered_notional += opening * price
            trip_fees += fee * opening / size
            position += opening if signed > 0 else -opening
        changes[m, 0], changes[m, 1] = position, cash
    return (
        n_orders,
        n_fills,
        n_trips,
        orders,
        closed,
        fill_ints,
        fill_floats,
        trips,
        changes,
        fees_paid,
        traded,
    )
