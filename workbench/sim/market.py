"""The simulator's order flow: a pure, seeded engine that turns ``step()`` calls into wire messages.

Why pure: the simulator exists so that feed, book and backtest code can be checked against a
known truth. Everything here is a function of the seed and the order of ``step`` calls, so a
test can replay the exact stream a server sent, and the server shell only adds sockets,
threads and wall-clock ``ts`` values (passed in, never read here).

Prices are integers of *price units* (1/100, ``PRICE_DECIMALS``) on a per-symbol tick grid;
sizes are integers of *lots* (1/1000, ``SIZE_DECIMALS``). They become decimal strings by
integer arithmetic only, so a level reads ``"30000.50"`` and never ``"3.00005e4"``.

Each symbol owns its own ``random.Random`` seeded from ``(seed, symbol)``: a symbol's stream
does not depend on how the server interleaves symbols, only on how many steps it took.

Order flow per step, one of:

- a limit order that adds size at or near a fair value that random-walks (never crossing);
- a cancel, partial or full, preferring levels far from the fair value when the book is wide;
- a market order that sweeps the other side, one ``Trade`` per level touched (taker side),
  then one ``Delta`` with every changed level.

A side never drops below ``MIN_LEVELS`` levels (cancels and sweeps leave them alone) and never
exceeds ``MAX_LEVELS`` (a new level evicts the farthest); levels beyond ``BAND_TICKS`` from the
fair value are cancelled first, so books stay realistic however long the simulation runs.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from typing import Final, Literal

import msgspec

PRICE_DECIMALS: Final = 2
SIZE_DECIMALS: Final = 3

MIN_LEVELS: Final = 20
MAX_LEVELS: Final = 90
BAND_TICKS: Final = 150
INITIAL_LEVELS: Final = 40

_KNOWN_BASES: Final = {"BTC": 30_000_00, "ETH": 2_000_00}
"""Base prices in price units for assets people expect to recognise; others are hashed."""

_P_MARKET: Final = 0.12
_P_CANCEL: Final = 0.28
_P_DRIFT: Final = 0.15
_MAX_ADD_LOTS: Final = 2_000
_MEAN_TAKER_LOTS: Final = 1_200.0
_MEAN_ADD_DISTANCE: Final = 20.0

Side = Literal["buy", "sell"]
Level = tuple[str, str]


class Snapshot(msgspec.Struct, frozen=True, tag_field="type", tag="snapshot"):
    """The whole book of one symbol, including every message up to and including ``seq``."""

    symbol: str
    seq: int
    ts: int
    bids: list[Level]
    asks: list[Level]
    last_trade_id: int = 0
    """The newest trade already generated (0 before the first): what a recorder owes."""


class Delta(msgspec.Struct, frozen=True, tag_field="type", tag="delta"):
    """Absolute new sizes of the levels one order changed; size ``"0"`` deletes the level."""

    symbol: str
    seq: int
    ts: int
    bids: list[Level]
    asks: list[Level]


class Trade(msgspec.Struct, frozen=True, tag_field="type", tag="trade"):
    """One fill of a market order against one price level; ``side`` is the taker's."""

    symbol: str
    seq: int
    ts: int
    trade_id: int
    price: str
    size: str
    side: Side


Message = Delta | Trade


def format_fixed(value: int, decimals: int) -> str:
    """``value / 10**decimals`` as a plain decimal string, exact, without going through float."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


def price_str(units: int) -> str:
    return format_fixed(units, PRICE_DECIMALS)


def size_str(lots: int) -> str:
    """Sizes on the wire; a deleted level is ``"0"`` exactly as the protocol spells it."""
    return format_fixed(lots, SIZE_DECIMALS) if lots else "0"


def base_price(symbol: str) -> int:
    """Opening fair value in price units: ~30000 for BTC, ~2000 for ETH, hashed for others.

    The hash is CRC-32 of the name (stable across processes, unlike ``hash``), mapped to
    10.00 … 9990.00 so unfamiliar symbols still get plausible, distinct prices.
    """
    asset = symbol.split("-", 1)[0].upper()
    if asset in _KNOWN_BASES:
        return _KNOWN_BASES[asset]
    h = zlib.crc32(symbol.encode())
    mantissa = 100 + h % 900
    return mantissa * (10, 100, 1000)[h // 900 % 3]


def tick_size(base: int) -> int:
    """A 1-2-5 tick giving roughly 60,000 ticks across the base price (BTC 0.50, ETH 0.02)."""
    target = max(1, base // 60_000)
    tick, scale = 1, 1
    while True:
        for step in (1, 2, 5):
            if step * scale > target:
                return tick
            tick = step * scale
        scale *= 10


class _Book:
    """One symbol's price levels, counters and random stream."""

    def __init__(self, symbol: str, seed: int, ts: int, first_trade_id: int) -> None:
        self.symbol = symbol
        self.rng = random.Random(f"{seed}/{symbol}")
        base = base_price(symbol)
        self.tick = tick_size(base)
        self.base = base - base % self.tick
        self.fair = self.base
        self.seq = 0
        self.trade_id = first_trade_id
        self.ts = ts
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        rng = self.rng
        for i in range(INITIAL_LEVELS):
            self.bids[self.fair - i * self.tick] = rng.randint(1, _MAX_ADD_LOTS)
            self.asks[self.fair + (i + 1) * self.tick] = rng.randint(1, _MAX_ADD_LOTS)

    def best_bid(self) -> int:
        return max(self.bids)

    def best_ask(self) -> int:
        return min(self.asks)

    def snapshot(self) -> Snapshot:
        bids = [(price_str(p), size_str(self.bids[p])) for p in sorted(self.bids, reverse=True)]
        asks = [(price_str(p), size_str(self.asks[p])) for p in sorted(self.asks)]
        return Snapshot(self.symbol, self.seq, self.ts, bids, asks, self.trade_id)

    def step(self, ts: int, limit: int | None) -> list[Message]:
        self.ts = ts
        rng = self.rng
        if rng.random() < _P_DRIFT:
            self._drift()
        r = rng.random()
        if r < _P_MARKET and (limit is None or limit >= 2):
            return self._market_order(limit)
        if r < _P_MARKET + _P_CANCEL:
            return [self._cancel()]
        return [self._add(rng.random() < 0.5)]

    def _drift(self) -> None:
        # Reflect at half and double the base price so prices stay positive and plausible.
        move = self.tick if self.rng.random() < 0.5 else -self.tick
        if self.fair + move < self.base // 2 or self.fair + move > self.base * 2:
            move = -move
        self.fair += move

    def _delta(self, bids: dict[int, int], asks: dict[int, int]) -> Delta:
        self.seq += 1
        return Delta(
            self.symbol,
            self.seq,
            self.ts,
            [(price_str(p), size_str(bids[p])) for p in sorted(bids, reverse=True)],
            [(price_str(p), size_str(asks[p])) for p in sorted(asks)],
        )

    def _add(self, is_bid: bool) -> Delta:
        """Rest a limit order; on a full side a new level evicts the farthest or joins it."""
        distance = int(self.rng.expovariate(1.0 / _MEAN_ADD_DISTANCE))
        lots = self.rng.randint(1, _MAX_ADD_LOTS)
        if is_bid:
            levels = self.bids
            price = min(self.fair - distance * self.tick, self.best_ask() - self.tick)
        else:
            levels = self.asks
            price = max(self.fair + (distance + 1) * self.tick, self.best_bid() + self.tick)
        change: dict[int, int] = {}
        if price not in levels and len(levels) >= MAX_LEVELS:
            far = min(levels) if is_bid else max(levels)
            if (price < far) if is_bid else (price > far):
                price = far
            else:
                del levels[far]
                change[far] = 0
        levels[price] = levels.get(price, 0) + lots
        change[price] = levels[price]
        return self._delta(change, {}) if is_bid else self._delta({}, change)

    def _cancel(self) -> Delta:
        rng = self.rng
        is_bid = rng.random() < 0.5
        levels = self.bids if is_bid else self.asks
        far = min(levels) if is_bid else max(levels)
        too_wide = abs(far - self.fair) > BAND_TICKS * self.tick
        price = far if too_wide else rng.choice(list(levels))
        size = levels[price]
        can_delete = len(levels) > MIN_LEVELS
        if can_delete and (too_wide or size == 1 or rng.random() < 0.5):
            new_size = 0
        elif size > 1:
            new_size = rng.randint(1, size - 1)
        else:
            return self._add(is_bid)
        if new_size:
            levels[price] = new_size
        else:
            del levels[price]
        change = {price: new_size}
        return self._delta(change, {}) if is_bid else self._delta({}, change)

    def _market_order(self, limit: int | None) -> list[Message]:
        rng = self.rng
        mid2 = self.best_bid() + self.best_ask()
        lean = (2 * self.fair - mid2) / (2 * self.tick) * 0.05
        buy = rng.random() < 0.5 + max(-0.3, min(0.3, lean))
        remaining = 1 + int(rng.expovariate(1.0 / _MEAN_TAKER_LOTS))
        levels = self.asks if buy else self.bids
        side: Side = "buy" if buy else "sell"
        max_trades = None if limit is None else limit - 1
        out: list[Message] = []
        changed: dict[int, int] = {}
        for price in sorted(levels, reverse=not buy):
            if remaining == 0 or (max_trades is not None and len(out) == max_trades):
                break
            size = levels[price]
            fill = min(remaining, size)
            if fill == size and len(levels) <= MIN_LEVELS:
                fill = size - 1
            if fill == 0:
                break
            remaining -= fill
            self.seq += 1
            self.trade_id += 1
            out.append(
                Trade(
                    self.symbol,
                    self.seq,
                    self.ts,
                    self.trade_id,
                    price_str(price),
                    size_str(fill),
                    side,
                )
            )
            if fill == size:
                del levels[price]
                changed[price] = 0
            else:
                levels[price] = size - fill
                changed[price] = size - fill
        if not out:
            return [self._add(buy)]
        out.append(self._delta({}, changed) if buy else self._delta(changed, {}))
        return out


class Market:
    """Every configured symbol's book and order flow, advanced one step at a time.

    ``ts`` values are whatever the caller passes (the server passes wall-clock µs); they only
    label messages, so two runs with the same seed and step calls differ in ``ts`` alone —
    and in trade ids when ``first_trade_id`` differs (the server makes each session's ids new,
    because a database de-duplicates trades by id and would drop a rerun's trades).
    """

    def __init__(
        self, seed: int, symbols: Sequence[str], ts: int = 0, *, first_trade_id: int = 0
    ) -> None:
        self.symbols: tuple[str, ...] = tuple(symbols)
        self._books = {symbol: _Book(symbol, seed, ts, first_trade_id) for symbol in self.symbols}

    def step(self, symbol: str, ts: int, limit: int | None = None) -> list[Message]:
        """Apply one order to ``symbol`` and return its messages (trades first, then a delta).

        ``limit`` caps how many messages the step may produce (at least 1): a market order
        then sweeps fewer levels, and with ``limit=1`` no market order happens. This lets a
        caller stop at exactly N messages without cutting a sweep's delta off its trades.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        return self._books[symbol].step(ts, limit)

    def generate(self, count: int, ts: int) -> list[Message]:
        """Exactly ``count`` messages, stepping the symbols round robin (for burst mode)."""
        out: list[Message] = []
        while len(out) < count:
            for symbol in self.symbols:
                left = count - len(out)
                if left == 0:
                    break
                out.extend(self._books[symbol].step(ts, left))
        return out

    def snapshot(self, symbol: str) -> Snapshot:
        """The full book now; its ``ts`` is that of the last step on this symbol."""
        return self._books[symbol].snapshot()

    def seq(self, symbol: str) -> int:
        return self._books[symbol].seq

    def top(self, symbol: str) -> tuple[int, int, int]:
        """``(best bid, best ask, tick)`` in price units, for faults that must cross the book."""
        book = self._books[symbol]
        return book.best_bid(), book.best_ask(), book.tick
