"""The vectorized path's kernel, compiled by numba: what :func:`~workbench.engine.vectorized.
execute` runs. A module of its own so that numba is imported only by the first vectorized run,
not by every ``import workbench`` (a worker or a CLI command that never runs one)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from workbench.engine.vectorized import CANCELLED, FILLED, HALTED, REJECTED

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


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
def execute_decisions(
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
