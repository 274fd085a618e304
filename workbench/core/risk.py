"""The risk manager: the limits between a strategy and its broker, as pure rules.

:class:`RiskManager` holds one account's risk state (the equity peak, the UTC day's starting
equity, a daily-loss pause, a latched kill switch) and changes it only in :meth:`~RiskManager.mark`
and :meth:`~RiskManager.reset_kill_switch`. :meth:`~RiskManager.check` reads it and never
changes it, so a check can be repeated and a rejected order leaves no trace but its decision.
Time comes in as arguments (µs since the epoch, UTC); there is no clock, I/O or logging here:
the runner writes each :class:`RiskDecision` to its ``risk_decisions`` table
(:meth:`RiskDecision.as_row`).

Quantities. ``position`` is the symbol's signed position in base units (< 0 short), ``price``
the reference price the caller marks it at (the last trade or the mid), ``equity`` the
account's equity in the quote currency. Every notional is ``|size| × price`` at that reference
price, for a limit order too. A size order's effect is ``position ± size``; a target order's
(``Order.target``, a fraction of equity) ends at ``target × equity / price`` and trades
``|target × equity − position × price|`` of notional. A limit compares with a tolerance of one
part in 10⁹ (``TOLERANCE``), so float noise in ``size × price`` never decides: a cap (position,
notional, slippage, daily loss, drawdown) fires only BEYOND its value, while a stop-loss or a
take-profit fires once its move is REACHED.

Which orders are checked. An order is *reduce-only* when the position after it is no further
from zero and on the same side (a close, a partial reduction; not a flip, which opens a new
position). A reduce-only order is always accepted — paused, killed, whatever its notional or
the book's depth — because an operator must always be able to flatten, and a position that
passed the limits when it was built needs no check to shrink. (It is still split, below.)
Every other order is checked by these rules, in this order; the first that says no is the
decision:

1. ``kill_switch`` — the kill switch is latched (see ``max_drawdown``).
2. ``daily_loss`` — new exposure is paused: ``time_us`` is before ``paused_until_us``. The
   pause ends at the start of the next UTC day even before that day's first mark.
3. ``position_limit`` (``max_position_pct``) — ``|position after| × price / equity`` must not
   exceed the limit; per symbol (the position passed in). With equity <= 0 nothing fits.
4. ``order_notional`` (``max_order_notional``) — the order's notional must not exceed it.
5. ``slippage`` (``slippage_budget_bps``) — for a market order, or a limit order that is
   marketable against ``book`` (a buy limit at or above the best ask; not post-only): walk the
   book's opposite side with :meth:`BookFills.walk <workbench.core.bookfills.BookFills.walk>`
   for the order's size (on ``fills``' lot; a limit only up to its price). Slippage is the
   walk's average price beyond the TOUCH, the best price on the side it takes, in bps of it:
   ``(avg − best_ask) / best_ask`` for a buy, ``(best_bid − avg) / best_bid`` for a sell. The
   spread is not counted: it is visible before the order. It must not exceed the budget. A
   market order the book cannot fill in full, a book with nothing on that side, and a book
   marked invalid (awaiting a resync) are rejections too. A stop order is not walked (it
   triggers later, on another book). The check needs ``book``: without one it raises.

An order that passes is ``accepted``, or ``split`` (accepted too) when ``max_child_notional``
makes :meth:`~RiskManager.split` cut it; the decision says into how many children.

Splitting (``max_child_notional``). An order whose notional is beyond the cap becomes child
orders ``f"{parent_id}.{k}"``, k from 1, all but the last of the largest size within the cap
(``cap / price``, or on a ``lot``: the most whole lots within it) and the last the rest. Added
in order, the children's sizes equal the parent's size exactly. A target order is sized first
(``Terms.target_size`` with taker fees when ``fills`` is given, else the plain notional ÷
price), and its children are size orders: a child of a target would chase the whole target.
A cap worth less than one lot, or one that needs more than ``MAX_CHILDREN`` children, is a
configuration error (``UsageError``), from ``check`` as from ``split``.

Marks. :meth:`~RiskManager.mark` is called with the account's equity and one symbol's
position, price and entry price (its average entry), in time order; it returns the decisions
it took, each with ``accepted`` False and an ``action`` a runner acts on (``"close"``: close
``symbol``'s whole position with a reduce-only order; ``""``: nothing to send). In order:

- A new UTC day: the first mark of a day sets the day's starting equity to its equity and
  lifts a daily-loss pause (a ``resume`` decision, accepted).
- ``kill_switch`` (``max_drawdown``): the peak is the highest equity marked (since the start
  or the last reset). A drawdown ``1 − equity / peak`` beyond the limit LATCHES the kill
  switch: it stays on across days, restarts and checkpoints until an operator calls
  :meth:`~RiskManager.reset_kill_switch`, which also restarts the peak from the next mark (or
  the next mark would trip it again). The tripping mark asks to close the position; while
  latched, every later mark of a symbol with a position asks to close that one too.
- ``daily_loss`` (``daily_loss_cap``): a loss ``1 − equity / day's start`` beyond the cap
  pauses new exposure until the next UTC day starts. It asks for no close.
- ``stop_loss`` / ``take_profit`` (``stop_loss_pct``, ``take_profit_pct``): the position's
  return from its entry, ``(price / entry − 1)`` long and ``(1 − price / entry)`` short; a loss
  reaching ``stop_loss_pct``, or a gain reaching ``take_profit_pct``, asks to close it.

A close is asked once per position: a later mark of the same symbol, direction and entry price
asks nothing more (a partial fill of the close keeps the entry), and a flat mark forgets it. A
runner whose close order failed must retry it itself.

State. :meth:`~RiskManager.to_state` is JSON-safe and :meth:`~RiskManager.from_state` restores
it, so a restart keeps a latched kill switch, a pause, the peak and the day's start equity.
The limits are not part of the state: they come from the configuration.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeGuard

import msgspec

from workbench.core.book import OrderBook
from workbench.core.bookfills import BookFills, takeable
from workbench.core.fills import Terms
from workbench.errors import UsageError
from workbench.events import Order

DAY_US = 86_400_000_000
TOLERANCE = 1e-9
"""Relative: a value within one part in 10⁹ of its limit is at the limit."""
MAX_CHILDREN = 10_000
STATE_VERSION = 1

Rule = Literal[
    "accepted",
    "split",
    "kill_switch",
    "daily_loss",
    "position_limit",
    "order_notional",
    "slippage",
    "stop_loss",
    "take_profit",
    "resume",
    "kill_switch_reset",
    "no_price",  # the runner's: nothing to value an order at yet (no print, an empty book)
]
Action = Literal["", "close"]
RiskState = Literal["active", "paused", "killed"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# name -> (lowest allowed, whether the lowest itself is allowed, highest allowed, what it means)
_BOUNDS: dict[str, tuple[float, bool, float, str]] = {
    "max_position_pct": (0.0, True, math.inf, "a fraction of equity (0.5 = 50%)"),
    "max_order_notional": (0.0, True, math.inf, "a notional in the quote currency"),
    "daily_loss_cap": (0.0, False, 1.0, "a fraction of the day's starting equity (0.02 = 2%)"),
    "max_drawdown": (0.0, False, 1.0, "a fraction below the equity peak (0.2 = 20%)"),
    "slippage_budget_bps": (0.0, True, math.inf, "basis points beyond the touch"),
    "stop_loss_pct": (0.0, False, math.inf, "a fraction of the entry price (0.05 = 5%)"),
    "take_profit_pct": (0.0, False, math.inf, "a fraction of the entry price (0.1 = 10%)"),
    "max_child_notional": (0.0, False, math.inf, "a notional in the quote currency"),
}


@dataclass(frozen=True)
class RiskLimits:
    """Every limit is optional: None turns its rule off. The rules are in the module docstring."""

    max_position_pct: float | None = None
    max_order_notional: float | None = None
    daily_loss_cap: float | None = None
    max_drawdown: float | None = None
    slippage_budget_bps: float | None = None
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    max_child_notional: float | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            low, low_ok, high, meaning = _BOUNDS[field.name]
            bound = f">= {low:g}" if low_ok else f"> {low:g}"
            if high != math.inf:
                bound += f" and <= {high:g}"
            if not _real(value) or not (
                (value >= low if low_ok else value > low) and value <= high
            ):
                raise UsageError(
                    f"RiskLimits.{field.name} is {meaning}: it must be None (off) or a number "
                    f"{bound}, got {value!r}"
                )


class RiskDecision(msgspec.Struct, frozen=True):
    """One decision of the risk manager. ``client_order_id`` is empty for a mark's decision,
    ``detail`` holds the numbers the rule used, and ``action`` says what the runner must do
    (``"close"``: close ``symbol``'s position)."""

    time_us: int
    client_order_id: str
    rule: Rule
    accepted: bool
    reason: str
    detail: dict[str, float | str] = {}
    action: Action = ""
    symbol: str = ""

    def as_row(self) -> dict[str, int | str | bool]:
        """A flat row for the ``risk_decisions`` table; ``detail`` as JSON text."""
        return {
            "time_us": self.time_us,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "rule": self.rule,
            "accepted": self.accepted,
            "action": self.action,
            "reason": self.reason,
            "detail": json.dumps(self.detail, sort_keys=True, allow_nan=False),
        }


class RiskManager:
    """One account's risk state and the rules that read it (see the module docstring)."""

    def __init__(self, limits: RiskLimits) -> None:
        if not isinstance(limits, RiskLimits):
            raise UsageError(f"RiskManager needs RiskLimits, got {type(limits).__name__}")
        self.limits = limits
        self._last_mark_us: int | None = None
        self._peak: float | None = None
        self._day: int | None = None
        self._day_start: float | None = None
        self._paused_until: int | None = None
        self._pause_reason = ""
        self._killed = False
        self._kill_reason = ""
        self._exits: dict[str, tuple[str, float | None]] = {}

    # -- what the state says ------------------------------------------------------------------
    @property
    def state(self) -> RiskState:
        """As of the last mark: a pause stands here until the next day's first mark lifts it
        (:meth:`is_paused` answers for a given time)."""
        if self._killed:
            return "killed"
        return "paused" if self._paused_until is not None else "active"

    @property
    def killed(self) -> bool:
        return self._killed

    @property
    def kill_reason(self) -> str:
        return self._kill_reason

    @property
    def paused_until_us(self) -> int | None:
        return self._paused_until

    @property
    def pause_reason(self) -> str:
        return self._pause_reason

    @property
    def peak_equity(self) -> float | None:
        return self._peak

    @property
    def day_start_equity(self) -> float | None:
        return self._day_start

    def is_paused(self, time_us: int) -> bool:
        return self._paused_until is not None and time_us < self._paused_until

    # -- orders -------------------------------------------------------------------------------
    def check(
        self,
        order: Order,
        *,
        time_us: int,
        price: float,
        position: float,
        equity: float,
        book: OrderBook | None = None,
        fills: BookFills | None = None,
    ) -> RiskDecision:
        """Accept ``order`` or reject it by the first rule that says no."""
        _time(time_us)
        price = _number("price", price, positive=True)
        position = _number("position", position)
        equity = _number("equity", equity)
        size, after = _effect(order, price, position, equity)
        notional = size * price
        what = f"{order.side} {size:.6g} {order.symbol}"
        detail: dict[str, float | str] = {
            "price": price,
            "position": position,
            "position_after": after,
            "size": size,
            "notional": notional,
            "equity": equity,
        }

        def no(rule: Rule, reason: str, **numbers: float | str) -> RiskDecision:
            return RiskDecision(
                time_us,
                order.client_order_id,
                rule,
                False,
                f"{what}: {reason}",
                {**detail, **numbers},
                symbol=order.symbol,
            )

        if _reduces(position, after):
            return self._accept(
                order,
                time_us,
                size,
                price,
                detail,
                f"{what} only reduces the position ({position:.6g} -> {after:.6g}): always allowed",
                fills,
            )
        limits = self.limits
        if self._killed:
            return no(
                "kill_switch",
                f"the kill switch is latched ({self._kill_reason}); an operator must reset it",
            )
        if self._paused_until is not None and time_us < self._paused_until:
            return no(
                "daily_loss",
                f"new exposure is paused until {_iso(self._paused_until)} ({self._pause_reason})",
                paused_until_us=self._paused_until,
            )
        cap = limits.max_position_pct
        if cap is not None:
            if equity <= 0:
                return no(
                    "position_limit",
                    f"equity {equity:.6g} is not positive, so no position fits the {cap:.4g} limit",
                    limit=cap,
                )
            ratio = abs(after) * price / equity
            if _beyond(ratio, cap):
                return no(
                    "position_limit",
                    f"position {ratio:.4g} of equity would exceed the {cap:.4g} limit",
                    position_pct=ratio,
                    limit=cap,
                )
        cap = limits.max_order_notional
        if cap is not None and _beyond(notional, cap):
            return no(
                "order_notional",
                f"notional {notional:,.2f} would exceed the {cap:,.2f} limit",
                limit=cap,
            )
        budget = limits.slippage_budget_bps
        if budget is not None:
            refused = self._slippage(order, size, budget, book, fills or BookFills())
            if refused is not None:
                reason, numbers = refused
                return no("slippage", reason, **numbers)
        return self._accept(
            order, time_us, size, price, detail, f"{what} is within every limit", fills
        )

    def _accept(
        self,
        order: Order,
        time_us: int,
        size: float,
        price: float,
        detail: dict[str, float | str],
        reason: str,
        fills: Terms | None,
    ) -> RiskDecision:
        cap = self.limits.max_child_notional
        children = len(_pieces(size, self._child_size(price, fills), cap)) if cap else 1
        if children == 1:
            return RiskDecision(
                time_us,
                order.client_order_id,
                "accepted",
                True,
                reason,
                detail,
                symbol=order.symbol,
            )
        return RiskDecision(
            time_us,
            order.client_order_id,
            "split",
            True,
            f"{reason}; sent as {children} child orders of at most {cap:,.2f} notional",
            {**detail, "children": children, "max_child_notional": float(cap or 0.0)},
            symbol=order.symbol,
        )

    def _slippage(
        self,
        order: Order,
        size: float,
        budget: float,
        book: OrderBook | None,
        fills: BookFills,
    ) -> tuple[str, dict[str, float | str]] | None:
        """Why the walk breaks the budget, with its numbers; None if it does not."""
        if order.type == "stop" or (order.type == "limit" and order.tif == "post_only"):
            return None
        if book is None:
            raise UsageError("slippage_budget_bps needs the live book: pass book= to check()")
        side = order.side
        book_side = "asks" if side == "buy" else "bids"
        if not book.valid:
            return "the book is out of sync (awaiting a resync): slippage cannot be estimated", {}
        best = book.best_ask_price if side == "buy" else book.best_bid_price
        limit: float | None = None
        if order.type == "limit":
            assert order.price is not None  # _effect checked it
            limit = fills.price(order.price, side, "limit")
            if best is None or (best > limit if side == "buy" else best < limit):
                return None  # not marketable: it rests and takes nothing
        if best is None:
            return f"the book has no {book_side} to take", {}
        walk = fills.walk(side, size, takeable(book, side), limit)
        if not walk.filled:
            return None  # below the lot: it takes nothing
        average = walk.notional / walk.filled
        numbers: dict[str, float | str] = {
            "walk_size": walk.size,
            "walk_filled": walk.filled,
            "average_price": average,
            "touch": best,
            "budget_bps": budget,
        }
        if order.type == "market" and walk.unfilled > 0:
            return (
                f"the book holds only {walk.filled:.6g} of {walk.size:.6g} on its {book_side}",
                numbers,
            )
        bps = (average - best if side == "buy" else best - average) / best * 10_000
        numbers["slippage_bps"] = bps
        if _beyond(bps, budget):
            return (
                f"walking the {book_side} averages {average:.6g}, {bps:.2f} bps beyond the "
                f"touch {best:.6g}, over the {budget:g} bps budget",
                numbers,
            )
        return None

    def split(
        self,
        order: Order,
        price: float,
        *,
        equity: float | None = None,
        position: float | None = None,
        fills: Terms | None = None,
    ) -> list[Order]:
        """``order`` as the child orders ``max_child_notional`` allows (``[order]`` when it
        fits or the rule is off). A target order needs ``equity`` and ``position`` to be
        sized; its children are size orders."""
        cap = self.limits.max_child_notional
        price = _number("price", price, positive=True)
        if cap is None:
            return [order]
        if order.target is not None:
            if equity is None or position is None:
                raise UsageError("splitting a target order needs equity= and position= to size it")
            equity = _number("equity", equity)
            position = _number("position", position)
            if fills is not None:
                signed = fills.target_size(order.target, equity, position, price, "taker")
            else:
                signed = (order.target * equity - position * price) / price
            if not signed or (signed > 0) != (order.side == "buy"):
                return [order]  # it would not trade: the broker closes it at its target
            size = abs(signed)
        else:
            size, _ = _effect(order, price, 0.0, 1.0)
        pieces = _pieces(size, self._child_size(price, fills), cap)
        if order.target is None and len(pieces) == 1:
            return [order]
        return [
            msgspec.structs.replace(
                order, client_order_id=f"{order.client_order_id}.{k}", size=piece, target=None
            )
            for k, piece in enumerate(pieces, 1)
        ]

    def _child_size(self, price: float, fills: Terms | None) -> float:
        cap = self.limits.max_child_notional
        assert cap is not None
        lot = fills.lot if fills is not None else 0.0
        if not lot:
            return cap / price
        lots = math.floor(cap / (price * lot) + TOLERANCE)
        if lots < 1:
            raise UsageError(
                f"max_child_notional {cap:g} is worth less than one lot ({lot:g} at {price:g} "
                f"is {lot * price:g}): no child order could be filled"
            )
        return round(lots * lot, _decimals(lot))

    # -- marks --------------------------------------------------------------------------------
    def mark(
        self,
        time_us: int,
        equity: float,
        position: float,
        price: float,
        entry_price: float = math.nan,
        *,
        symbol: str = "",
    ) -> list[RiskDecision]:
        """Update the peak and the day from ``equity`` and check ``symbol``'s position; the
        decisions taken, in the order of the module docstring."""
        _time(time_us)
        if self._last_mark_us is not None and time_us < self._last_mark_us:
            raise UsageError(
                f"mark at {time_us} is before the last mark at {self._last_mark_us}: "
                "time runs forward"
            )
        equity = _number("equity", equity)
        position = _number("position", position)
        price = _number("price", price, positive=True)
        limits = self.limits
        entry: float | None = None
        if position:
            if math.isfinite(entry_price) and entry_price > 0:
                entry = float(entry_price)
            elif limits.stop_loss_pct is not None or limits.take_profit_pct is not None:
                raise UsageError(
                    f"mark needs the position's entry price for its stop-loss/take-profit, "
                    f"got {entry_price!r}"
                )
        self._last_mark_us = time_us
        out: list[RiskDecision] = []
        base: dict[str, float | str] = {"equity": equity, "position": position, "price": price}
        if entry is not None:
            base["entry_price"] = entry

        def decision(rule: Rule, reason: str, action: Action = "", **numbers: float) -> None:
            out.append(
                RiskDecision(
                    time_us,
                    "",
                    rule,
                    rule == "resume",
                    reason,
                    {**base, **numbers},
                    action,
                    symbol,
                )
            )

        day = time_us // DAY_US
        if self._day is None or day > self._day:
            self._day, self._day_start = day, equity
            if self._paused_until is not None:
                self._paused_until, self._pause_reason = None, ""
                decision(
                    "resume",
                    f"a new UTC day began at equity {equity:,.2f}: the daily-loss pause is lifted",
                    day_start_equity=equity,
                )
        if self._peak is None or equity > self._peak:
            self._peak = equity
        peak, cap = self._peak, limits.max_drawdown
        if cap is not None and not self._killed and peak > 0:
            drawdown = 1 - equity / peak
            if _beyond(drawdown, cap):
                self._killed = True
                self._kill_reason = (
                    f"drawdown {drawdown:.2%} from the peak {peak:,.2f} to {equity:,.2f} "
                    f"passed the {cap:.2%} limit"
                )
                close = self._claim_exit(symbol, position, entry)
                decision(
                    "kill_switch",
                    f"kill switch latched: {self._kill_reason}"
                    + ("; close the position" if close else ""),
                    "close" if close else "",
                    drawdown=drawdown,
                    peak_equity=peak,
                    limit=cap,
                )
        start, cap = self._day_start, limits.daily_loss_cap
        if cap is not None and self._paused_until is None and start is not None and start > 0:
            loss = 1 - equity / start
            if _beyond(loss, cap):
                self._paused_until = (day + 1) * DAY_US
                self._pause_reason = (
                    f"the day's loss {loss:.2%} from {start:,.2f} to {equity:,.2f} passed the "
                    f"{cap:.2%} cap"
                )
                decision(
                    "daily_loss",
                    f"{self._pause_reason}: new exposure paused until {_iso(self._paused_until)}",
                    loss=loss,
                    day_start_equity=start,
                    limit=cap,
                    paused_until_us=self._paused_until,
                )
        if not position:
            self._exits.pop(symbol, None)
            return out
        held = f"{'long' if position > 0 else 'short'} {abs(position):.6g} {symbol}".rstrip()
        if self._killed:
            if self._claim_exit(symbol, position, entry):
                decision(
                    "kill_switch",
                    f"the kill switch is latched ({self._kill_reason}): close the {held}",
                    "close",
                )
            return out
        if entry is None:
            return out
        gain = (price / entry - 1) if position > 0 else (1 - price / entry)
        stop, take = limits.stop_loss_pct, limits.take_profit_pct
        if stop is not None and _reached(-gain, stop):
            if self._claim_exit(symbol, position, entry):
                decision(
                    "stop_loss",
                    f"the {held} from {entry:.6g} is {-gain:.2%} down at {price:.6g}, reaching "
                    f"the {stop:.2%} stop-loss: close it",
                    "close",
                    return_pct=gain,
                    limit=stop,
                )
        elif (
            take is not None and _reached(gain, take) and self._claim_exit(symbol, position, entry)
        ):
            decision(
                "take_profit",
                f"the {held} from {entry:.6g} is {gain:.2%} up at {price:.6g}, reaching the "
                f"{take:.2%} take-profit: close it",
                "close",
                return_pct=gain,
                limit=take,
            )
        return out

    def _claim_exit(self, symbol: str, position: float, entry: float | None) -> bool:
        """True the first time a close is asked for this position (see the module docstring)."""
        if not position:
            return False
        key = ("long" if position > 0 else "short", entry)
        if self._exits.get(symbol) == key:
            return False
        self._exits[symbol] = key
        return True

    def reset_kill_switch(self, time_us: int) -> RiskDecision:
        """An operator's reset: new exposure is allowed again and the peak restarts from the
        next mark. The decision records it (resetting an unlatched switch changes nothing)."""
        _time(time_us)
        if not self._killed:
            return RiskDecision(
                time_us, "", "kill_switch_reset", True, "the kill switch was not latched"
            )
        reason = self._kill_reason
        self._killed, self._kill_reason, self._peak = False, "", None
        return RiskDecision(
            time_us,
            "",
            "kill_switch_reset",
            True,
            f"an operator reset the kill switch (it had latched: {reason}); the equity peak "
            "restarts from the next mark",
        )

    # -- checkpoints --------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The risk state as JSON-safe data (see :meth:`from_state`)."""
        return {
            "version": STATE_VERSION,
            "last_mark_us": self._last_mark_us,
            "peak_equity": self._peak,
            "day": self._day,
            "day_start_equity": self._day_start,
            "paused_until_us": self._paused_until,
            "pause_reason": self._pause_reason,
            "killed": self._killed,
            "kill_reason": self._kill_reason,
            "exits": {
                symbol: {"direction": direction, "entry_price": entry}
                for symbol, (direction, entry) in sorted(self._exits.items())
            },
        }

    @classmethod
    def from_state(cls, limits: RiskLimits, state: dict[str, Any]) -> RiskManager:
        """A manager with ``limits`` and the state :meth:`to_state` gave."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise UsageError(f"not a risk state of version {STATE_VERSION}: {state!r:.200}")
        manager = cls(limits)
        try:
            manager._last_mark_us = _optional(state["last_mark_us"], int)
            manager._peak = _optional(state["peak_equity"], float)
            manager._day = _optional(state["day"], int)
            manager._day_start = _optional(state["day_start_equity"], float)
            manager._paused_until = _optional(state["paused_until_us"], int)
            manager._pause_reason = str(state["pause_reason"])
            killed = state["killed"]
            if not isinstance(killed, bool):
                raise TypeError("killed must be true or false")
            manager._killed = killed
            manager._kill_reason = str(state["kill_reason"])
            for symbol, exit_ in state["exits"].items():
                direction = exit_["direction"]
                if direction not in ("long", "short"):
                    raise TypeError(f"exit direction {direction!r}")
                manager._exits[str(symbol)] = (direction, _optional(exit_["entry_price"], float))
        except (KeyError, TypeError, AttributeError) as error:
            raise UsageError(f"malformed risk state ({error}): {state!r:.200}") from error
        return manager


def size_for_risk(equity: float, risk_fraction: float, entry: float, stop: float) -> float:
    """The size that loses ``risk_fraction`` of ``equity`` if the price moves from ``entry``
    to ``stop``: ``equity × risk_fraction / |entry − stop|`` base units (a long's stop is
    below its entry, a short's above; the size is positive either way)."""
    equity = _number("equity", equity, positive=True)
    entry = _number("entry", entry, positive=True)
    stop = _number("stop", stop, positive=True)
    if not _real(risk_fraction) or not 0 < risk_fraction <= 1:
        raise UsageError(
            f"risk_fraction is the fraction of equity to risk, > 0 and <= 1 (0.01 = 1%), "
            f"got {risk_fraction!r}"
        )
    if stop == entry:
        raise UsageError(f"the stop {stop:g} equals the entry: the risk per unit would be zero")
    return equity * risk_fraction / abs(entry - stop)


# -- helpers ------------------------------------------------------------------------------------
def _real(value: object) -> TypeGuard[float]:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(name: str, value: object, *, positive: bool = False) -> float:
    if _real(value) and (value > 0 or not positive):
        return float(value)
    wanted = "a positive finite number" if positive else "a finite number"
    raise UsageError(f"{name} must be {wanted}, got {value!r}")


def _time(time_us: object) -> None:
    if not isinstance(time_us, int) or isinstance(time_us, bool):
        raise UsageError(f"time_us must be an int (µs since the epoch, UTC), got {time_us!r}")


def _optional(value: Any, kind: type[int] | type[float]) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    if kind is int and not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return kind(value)


def _effect(order: Order, price: float, position: float, equity: float) -> tuple[float, float]:
    """The size ``order`` trades and the signed position it leaves, at ``price``."""
    if not isinstance(order, Order):
        raise UsageError(f"check() takes a workbench.events.Order, got {type(order).__name__}")
    if (order.size is None) == (order.target is None):
        raise UsageError(f"order {order.client_order_id!r} needs exactly one of size and target")
    if order.type in ("limit", "stop") and not (_real(order.price) and (order.price or 0.0) > 0):
        raise UsageError(f"{order.type} order {order.client_order_id!r} needs a positive price")
    if order.size is not None:
        size = _number("an order's size", order.size, positive=True)
        return size, position + (size if order.side == "buy" else -size)
    target = _number("an order's target", order.target)
    return abs(target * equity - position * price) / price, target * equity / price


def _reduces(before: float, after: float) -> bool:
    """``after`` is no further from zero than ``before``, on its side (a flip opens a position)."""
    if after == 0:
        return True
    return before * after > 0 and abs(after) <= abs(before) * (1 + TOLERANCE)


def _beyond(value: float, limit: float) -> bool:
    return value > limit + TOLERANCE * abs(limit)


def _reached(value: float, limit: float) -> bool:
    return value >= limit - TOLERANCE * abs(limit)


def _pieces(size: float, child: float, cap: float | None) -> list[float]:
    """``size`` cut into pieces of ``child`` and a last one of the rest; added in order the
    pieces give ``size`` exactly."""
    count = max(1, math.ceil(size / child - TOLERANCE))
    if count > MAX_CHILDREN:
        raise UsageError(
            f"splitting size {size:g} into children of {child:g} (max_child_notional {cap}) "
            f"would make {count} orders, more than {MAX_CHILDREN}: raise max_child_notional"
        )
    if count == 1:
        return [size]
    pieces = [child] * (count - 1)
    done = sum(pieces)
    last = size - done  # exact in practice: done >= size / 2 (Sterbenz)
    while done + last != size:  # a guard for the rounding it leaves, one ulp at a time
        last = math.nextafter(last, math.inf if done + last < size else -math.inf)
    pieces.append(last)
    return pieces


def _decimals(step: float) -> int:
    return max(0, -int(Decimal(repr(step)).normalize().as_tuple().exponent))


def _iso(time_us: int) -> str:
    return (_EPOCH + timedelta(microseconds=time_us)).strftime("%Y-%m-%dT%H:%M:%SZ")
