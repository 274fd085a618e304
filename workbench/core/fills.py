"""The bar fill model: when and at which price an order fills, given only OHLCV bars.

A bar says where the price opened and closed and how far it went, not the path between, so
the rules take the side that cannot flatter a strategy:

- A market order decided on a bar fills at the NEXT bar's open, plus ``slippage_bps``
  against the trader (a buy pays more, a sell gets less). ``fill_at="close"`` fills it at
  the deciding bar's own close instead: the strategy saw that close before deciding, which
  no live order can do, so reports label it look-ahead-prone.
- A resting limit order fills only on a bar that trades THROUGH its price (a buy limit needs
  ``low < price``); a bar that only touches it (``low == price``) is no fill unless
  ``limit_touch`` says so, since the queue ahead of the order may have taken all there was.
  The fill is at the limit price, as a maker. If the bar opens beyond the limit (a buy
  limit above the open), the order was marketable from the start: it fills at the open as
  a taker, slippage included.
- An IOC limit order has one chance, the next bar's open; a post-only order that would take
  liquidity when placed is rejected.
- A stop-market order triggers on a bar that reaches its price (a buy stop needs
  ``high >= price``) and fills at the worse of the stop price and the open (a gap through
  the stop fills at the open), plus slippage, as a taker.
- Bars carry no depth: every fill is for the order's whole size.

Fees are basis points of the fill's notional, maker or taker. Sizes are rounded down to the
instrument's ``lot`` and orders below ``min_size`` rejected; limit and stop prices are
rounded to the ``tick`` on the side that never improves them for the trader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from workbench.errors import UsageError
from workbench.events import Bar, Order

Liquidity = Literal["maker", "taker"]
FILL_AT = ("next_open", "close")


class Terms:
    """The fees and the instrument's increments every fill model charges and rounds to (the
    bar model here, the book model in :mod:`workbench.core.bookfills`): a subclass is a frozen
    dataclass with these fields that calls :meth:`_check` from ``__post_init__``."""

    taker_fee_bps: float
    maker_fee_bps: float
    tick: float
    lot: float
    min_size: float

    def _check(self, *numbers: str) -> None:
        """Each field in ``numbers`` is a finite number >= 0, and no fee takes everything."""
        for name in numbers:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UsageError(f"{name} must be a number >= 0, got {value!r}")
        if self.maker_fee_bps >= 10_000 or self.taker_fee_bps >= 10_000:
            raise UsageError("a fee of 10,000 bps or more would take the whole notional")

    def fee(self, notional: float, liquidity: Liquidity) -> float:
        bps = self.maker_fee_bps if liquidity == "maker" else self.taker_fee_bps
        return abs(notional) * bps / 10_000

    def size(self, size: float) -> float:
        """``size`` rounded down to the lot; 0.0 below the minimum size."""
        if self.lot:
            size = math.floor(size / self.lot + 1e-9) * self.lot
        return size if size >= self.min_size and size > 0 else 0.0

    def price(self, price: float, side: str, kind: str) -> float:
        """A limit or stop price on the tick grid, rounded so it never flatters the trader:
        a buy limit down, a sell limit up; a buy stop up, a sell stop down."""
        if not self.tick:
            return price
        steps = price / self.tick
        up = (side == "sell") if kind == "limit" else (side == "buy")
        return (math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)) * self.tick

    def target_size(
        self, target: float, equity: float, position: float, price: float, liquidity: Liquidity
    ) -> float:
        """The signed size that leaves a position worth ``target`` × equity after this fill's
        fee (the fee lowers the equity the target is a fraction of)."""
        if target == 0:
            return -position  # exactly: a flat target must leave no dust behind
        rate = self.fee(1.0, liquidity)
        wanted = target * equity - position * price
        if wanted == 0:
            return 0.0
        direction = 1.0 if wanted > 0 else -1.0
        return wanted / (price * (1 + direction * target * rate))


@dataclass(frozen=True)
class BarFills(Terms):
    """Costs, the fill rule and the instrument's increments; every field documented above."""

    taker_fee_bps: float = 0.0
    maker_fee_bps: float = 0.0
    slippage_bps: float = 0.0
    fill_at: Literal["next_open", "close"] = "next_open"
    limit_touch: bool = False
    tick: float = 0.0
    lot: float = 0.0
    min_size: float = 0.0

    def __post_init__(self) -> None:
        self._check("taker_fee_bps", "maker_fee_bps", "slippage_bps", "tick", "lot", "min_size")
        if self.fill_at not in FILL_AT:
            raise UsageError(f"fill_at must be one of {', '.join(FILL_AT)}, got {self.fill_at!r}")

    @property
    def look_ahead_prone(self) -> bool:
        return self.fill_at == "close"

    def slipped(self, price: float, side: str) -> float:
        """``price`` moved against the trader by the slippage."""
        factor = self.slippage_bps / 10_000
        return price * (1 + factor) if side == "buy" else price * (1 - factor)

    def match(self, order: Order, bar: Bar) -> tuple[float, Liquidity] | None:
        """The price and liquidity at which a working ``order`` fills on ``bar``, or None."""
        side, limit = order.side, order.price
        if order.type == "market":
            return self.slipped(bar.open, side), "taker"
        if limit is None:
            raise UsageError(f"a {order.type} order needs a price")  # the Context checks first
        if order.type == "stop":
            if side == "buy" and bar.high >= limit:
                return self.slipped(max(bar.open, limit), side), "taker"
            if side == "sell" and bar.low <= limit:
                return self.slipped(min(bar.open, limit), side), "taker"
            return None
        marketable = bar.open < limit if side == "buy" else bar.open > limit
        if marketable and order.tif != "post_only":
            return self.slipped(bar.open, side), "taker"
        if order.tif == "ioc":
            return None
        if side == "buy":
            through = bar.low < limit or (self.limit_touch and bar.low == limit)
        else:
            through = bar.high > limit or (self.limit_touch and bar.high == limit)
        return (limit, "maker") if through else None
