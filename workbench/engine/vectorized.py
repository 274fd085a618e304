"""The vectorized path: what a strategy's ``signals()`` decided, executed in compiled code.

``signals()`` gives, for every bar, the target position decided at its close (NaN: no
decision). Executing those targets is one pass over the decisions only, which
:func:`~workbench.engine.kernel.execute_decisions` does in machine code (numba): at each
decision it does what ``ctx.target(f)`` does in the event engine, fills the order by the same
bar fill model (next open or the same close, slippage, taker fee, lot and minimum size, no
fill and no order on a halted bar) and books the fill as
:class:`~workbench.core.portfolio.Portfolio` does, round trips included. Every float operation
is the engine's, in the engine's order (numba compiles IEEE arithmetic without fast-math), so
both paths give identical numbers, not merely close ones; the tests hold them to that on a
million bars.

The result is columnar (:class:`Execution`): a sweep takes its metrics straight from the
arrays; :meth:`Execution.to_run` builds the engine's objects for a full backtest result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from workbench.core.fills import BarFills
from workbench.core.portfolio import RoundTrip
from workbench.engine.bars import AT_TARGET, BELOW_LOT, OrderRecord, Run, at_closes
from workbench.engine.bars import HALTED as HALTED_REASON
from workbench.engine.context import client_order_id
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
                client_order_id(name, k + 1),
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
    from workbench.engine.kernel import execute_decisions  # numba loads on first use

    out = execute_decisions(
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
