"""One symbol's account: cash, position and the round-trip trades its fills make.

Cash is in the quote currency and pays every fee; a sale beyond the position goes short
(the proceeds are cash, the short is marked at the current price). A round trip runs from
flat to flat: a fill that flips the position closes one trip and opens the next with the
remainder, its fee split between them by size. A trip's ``pnl`` is net of all its fees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.errors import UsageError
from workbench.events import Fill


@dataclass(frozen=True)
class RoundTrip:
    symbol: str
    direction: str  # "long" or "short"
    entry_ts: int
    exit_ts: int
    size: float  # everything bought (long) or sold (short) into the position
    entry_price: float  # average over the entries
    exit_price: float  # average over the exits
    fees: float
    pnl: float

    @property
    def return_pct(self) -> float:
        """PnL over the entry notional."""
        return self.pnl / (self.size * self.entry_price)


def starting_cash(cash: object) -> float:
    """``cash`` as the amount an account starts from, refused unless positive and finite."""
    if isinstance(cash, bool) or not isinstance(cash, (int, float)):
        raise UsageError(f"cash must be a positive amount, got {cash!r}")
    if not (cash > 0 and math.isfinite(cash)):
        raise UsageError(f"cash must be a positive amount, got {cash!r}")
    return float(cash)


class Portfolio:
    """Cash and a position, changed only by :meth:`apply`."""

    def __init__(self, symbol: str, cash: float) -> None:
        self.symbol = symbol
        self.cash = cash
        self.position = 0.0
        self.fees_paid = 0.0
        self.traded_notional = 0.0
        self.trips: list[RoundTrip] = []
        self._trip_start = 0
        self._direction = "long"
        self._entered = 0.0  # size and notional into the open trip, and out of it
        self._entered_notional = 0.0
        self._exited = 0.0
        self._exited_notional = 0.0
        self._trip_fees = 0.0
        self._realized = 0.0

    def equity(self, price: float) -> float:
        return self.cash + self.position * price

    @property
    def entry_price(self) -> float:
        """The open trip's average entry price (NaN when flat)."""
        return self._entered_notional / self._entered if self.position else float("nan")

    def apply(self, fill: Fill) -> RoundTrip | None:
        """Book ``fill``; the round trip it closed, if any."""
        signed = fill.size if fill.side == "buy" else -fill.size
        self.cash -= signed * fill.price + fill.fee
        self.fees_paid += fill.fee
        self.traded_notional += fill.size * fill.price
        closing = 0.0
        if self.position and (self.position > 0) != (signed > 0):
            closing = min(abs(signed), abs(self.position))
        opening = abs(signed) - closing
        if opening <= 1e-12 * fill.size:  # rounding dust of a closing fill opens nothing
            opening = 0.0
        closed = None
        if closing:
            share = closing / fill.size
            self._exit(closing, fill.price, fill.fee * share)
            if abs(self.position) <= 1e-12 * max(1.0, closing):  # the trip is complete
                self.position = 0.0
                closed = self._close(fill.ts)
        if opening:
            if not self.position:
                self._trip_start = fill.ts
                self._direction = "long" if signed > 0 else "short"
            self._entered += opening
            self._entered_notional += opening * fill.price
            self._trip_fees += fill.fee * opening / fill.size
            self.position += opening if signed > 0 else -opening
        return closed

    def _exit(self, size: float, price: float, fee: float) -> None:
        direction = 1.0 if self.position > 0 else -1.0
        self._realized += direction * size * (price - self.entry_price)
        self._exited += size
        self._exited_notional += size * price
        self._trip_fees += fee
        self.position -= direction * size

    def _close(self, ts: int) -> RoundTrip:
        trip = RoundTrip(
            symbol=self.symbol,
            direction=self._direction,
            entry_ts=self._trip_start,
            exit_ts=ts,
            size=self._entered,
            entry_price=self._entered_notional / self._entered,
            exit_price=self._exited_notional / self._exited,
            fees=self._trip_fees,
            pnl=self._realized - self._trip_fees,
        )
        self.trips.append(trip)
        self._entered = self._entered_notional = self._exited = self._exited_notional = 0.0
        self._trip_fees = self._realized = 0.0
        return trip
