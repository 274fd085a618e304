"""An L2 order book with absolute-size levels, kept sorted incrementally.

Each side is a dict price → size plus a sorted list of prices. Updating an existing level is
one dict store; a new level is one ``insort`` and a removed level one ``bisect`` + ``del`` —
both C-speed memmoves, so a delta costs well under a microsecond and the best price, and the
top-N, are read without sorting. Bids are stored ascending like asks, best bid last.

The book does not decide when it is in sync: the caller marks it invalid on a gap or a
failed check and valid again once a snapshot is applied (``apply_snapshot`` does that).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping

from workbench.events import Level


class OrderBook:
    __slots__ = ("_ask_prices", "_asks", "_bid_prices", "_bids", "seq", "ts", "valid")

    def __init__(self) -> None:
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []
        self._ask_prices: list[float] = []
        self.valid = False
        self.seq: int | None = None
        self.ts = 0

    def apply_snapshot(
        self, bids: Iterable[Level], asks: Iterable[Level], *, seq: int | None = None, ts: int = 0
    ) -> None:
        """Replace the whole book; the book is valid from here on."""
        self._bids = {p: s for p, s in bids if s > 0}
        self._asks = {p: s for p, s in asks if s > 0}
        self._bid_prices = sorted(self._bids)
        self._ask_prices = sorted(self._asks)
        self.seq = seq
        self.ts = ts
        self.valid = True

    def set_bid(self, price: float, size: float) -> None:
        """Set the absolute size at a bid price; 0 deletes (an unknown level is ignored)."""
        levels = self._bids
        if size > 0.0:  # a float literal: no int-float comparison on the hot path
            if price not in levels:
                insort(self._bid_prices, price)
            levels[price] = size
        elif price in levels:
            del levels[price]
            prices = self._bid_prices
            del prices[bisect_left(prices, price)]

    def set_ask(self, price: float, size: float) -> None:
        """Set the absolute size at an ask price; 0 deletes (an unknown level is ignored)."""
        levels = self._asks
        if size > 0.0:
            if price not in levels:
                insort(self._ask_prices, price)
            levels[price] = size
        elif price in levels:
            del levels[price]
            prices = self._ask_prices
            del prices[bisect_left(prices, price)]

    def apply_delta(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        set_bid = self.set_bid
        for price, size in bids:
            set_bid(price, size)
        set_ask = self.set_ask
        for price, size in asks:
            set_ask(price, size)

    def truncate(self, depth: int) -> tuple[list[float], list[float]]:
        """Keep the best ``depth`` levels per side and return the prices removed: venues that
        stream a fixed-depth book (Kraken) send no delete for a level pushed out of it."""
        if len(self._bid_prices) <= depth >= len(self._ask_prices):
            return [], []  # the common case after a message: nothing to cut
        excess = len(self._bid_prices) - depth
        removed_bids = self._bid_prices[:excess] if excess > 0 else []  # bids ascend
        removed_asks = self._ask_prices[depth:]
        for price in removed_bids:
            del self._bids[price]
        del self._bid_prices[: len(removed_bids)]
        for price in removed_asks:
            del self._asks[price]
        del self._ask_prices[depth:]
        return removed_bids, removed_asks

    def invalidate(self) -> None:
        self.valid = False

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()
        self.seq = None
        self.valid = False

    @property
    def best_bid(self) -> Level | None:
        prices = self._bid_prices
        if not prices:
            return None
        price = prices[-1]
        return price, self._bids[price]

    @property
    def best_ask(self) -> Level | None:
        prices = self._ask_prices
        if not prices:
            return None
        price = prices[0]
        return price, self._asks[price]

    @property
    def best_bid_price(self) -> float | None:
        return self._bid_prices[-1] if self._bid_prices else None

    @property
    def best_ask_price(self) -> float | None:
        return self._ask_prices[0] if self._ask_prices else None

    @property
    def mid(self) -> float | None:
        if not self._bid_prices or not self._ask_prices:
            return None
        return (self._bid_prices[-1] + self._ask_prices[0]) / 2

    @property
    def spread(self) -> float | None:
        if not self._bid_prices or not self._ask_prices:
            return None
        return self._ask_prices[0] - self._bid_prices[-1]

    @property
    def crossed(self) -> bool:
        """Best bid at or above best ask: impossible in a continuous market, so a sync error."""
        return bool(self._bid_prices and self._ask_prices) and (
            self._bid_prices[-1] >= self._ask_prices[0]
        )

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels per side: bids descending, asks ascending."""
        bids = self._bids
        asks = self._asks
        bid_prices = self._bid_prices[-n:] if n > 0 else []
        return (
            [(p, bids[p]) for p in reversed(bid_prices)],
            [(p, asks[p]) for p in self._ask_prices[:n]],
        )

    def top_prices(self, n: int) -> tuple[list[float], list[float]]:
        """The best ``n`` prices per side, best first (bids descending, asks ascending), as
        new lists: two C slices, no size lookups and no tuples, for a caller that only needs
        to know whether the top of the book moved (a checksum cache)."""
        if n <= 0:
            return [], []
        return self._bid_prices[: -n - 1 : -1], self._ask_prices[:n]

    def size_maps(self) -> tuple[Mapping[float, float], Mapping[float, float]]:
        """Read-only live views price → size of the bid and the ask side (the book's own
        mappings: valid until the next ``apply_snapshot``, never to be modified)."""
        return self._bids, self._asks

    def bids(self) -> list[Level]:
        return self.top(len(self._bid_prices))[0]

    def asks(self) -> list[Level]:
        return self.top(len(self._ask_prices))[1]

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)
