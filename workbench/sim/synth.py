"""Seeded synthetic market history, the pure model behind ``workbench synth``: numpy in, arrays out.

Why a model and not the simulator's order flow: a backtest needs days to months of history,
and :class:`~workbench.sim.market.Market` steps one order at a time in Python (tens of
thousands of messages a second). Here every stretch of time is generated with whole-array
numpy operations, and the market has the features a strategy is tested against, which the
simulator's random walk lacks. It reuses the simulator's price grid (:func:`base_price`,
:func:`tick_size`, ``PRICE_DECIMALS``, ``SIZE_DECIMALS``), so BTC-USD starts near 30,000 with
a 0.50 tick in both.

Each symbol draws from its own generator, seeded by ``(seed, symbol)`` (and the chunk of time
for the fast state), so a symbol's history is the same whichever symbols accompany it.

The model of one symbol:

- **Regimes**: a Markov chain of segments minutes to hours long. A trend up or down drifts
  1-3 % of the base per-second volatility per second (a few per cent over a few hours); in a
  range the log price is an AR(1) around the level the range began at (half-life 15 minutes).
- **Volatility clusters**: per-second volatility is 60 %/year × the regime's level (trends 1.2,
  ranges 0.8) × a log-normal stochastic volatility (AR(1) per minute, two-hour memory) × a
  jump's aftershock (×3 right after a jump, decaying in about 20 minutes) × the square root
  of the intraday pattern.
- **Jumps**: about 1.5 a day at uniform times, ±(0.2 % + an exponential of mean 0.4 %).
- **Intraday volume**: trade intensity is proportional to ``1 + 0.6 cos(2π · time of the UTC
  day)`` — highest around midnight UTC, where the UTC day opens and closes, four times lower at
  noon — and to the volatility factors above; counts per second are Poisson, scaled so that a
  day has ``trades_per_day`` trades on average over the whole history.
- **Book**: the top :data:`BOOK_DEPTH` levels per side on the tick grid around the fair value,
  one tick wide (wider when volatility is high), updated before every
  :data:`TRADES_PER_BOOK_UPDATE`-th trade. An update is a delta — the levels that left the top
  deleted, those that entered added, the best level and one deeper level per side resized —
  or, when that would take more rows (the book moved half its depth or more, which at BTC's
  volatility and 0.50 tick is most updates) and for the first update, a snapshot: a ``reset``
  row and every level, as a depth channel sends it. Replaying the rows rebuilds a book of
  exactly that depth that is never crossed.
- **Trades**: at the best ask (taker buys) or the best bid (taker sells) of the book in force,
  so ``best bid <= price <= best ask``; buys are likelier while the fair value is about to
  rise. Sizes are log-normal in notional (median 250 in the quote currency).
- **Receipt**: ``recv_ts`` is ``ts`` plus a latency of 0.3 ms + an exponential of mean 0.7 ms,
  never decreasing within a symbol.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from workbench.sim.market import PRICE_DECIMALS, SIZE_DECIMALS, base_price, tick_size

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

DAY_SECONDS: Final = 86_400
BOOK_DEPTH: Final = 10
"""Levels per side of the synthetic book."""
TRADES_PER_BOOK_UPDATE: Final = 10
"""A book update precedes every this many trades: book rows come at a coarser rate."""
DEFAULT_TRADES_PER_DAY: Final = 100_000

BOOK_KINDS: Final = ("reset", "snapshot", "delta")
"""``book_deltas.kind`` by its code in :attr:`BookRows.kind`."""
BOOK_SIDES: Final = ("bid", "ask")
"""``book_deltas.side`` by its code in :attr:`BookRows.side` (-1 on a reset row: no side)."""
TRADE_SIDES: Final = ("sell", "buy")
"""``trades.side`` by :attr:`TradeRows.buy`."""

RANGE, UP, DOWN = 0, 1, 2
"""Regimes, as in :attr:`SymbolModel.regime`."""

_US: Final = 1_000_000
_SIGMA_PER_SECOND: Final = 0.6 / math.sqrt(365 * DAY_SECONDS)
_REGIME_MINUTES: Final = np.array([240.0, 180.0, 180.0])
"""Mean segment length of a range, an up-trend and a down-trend."""
_REGIME_NEXT: Final = np.array([[0.0, 0.5, 0.5], [0.7, 0.0, 0.3], [0.7, 0.3, 0.0]])
"""Transition probabilities between segments: a trend usually ends in a range."""
_REGIME_VOL: Final = np.array([0.8, 1.2, 1.2])
_TREND_DRIFT: Final = (0.01, 0.03)
_RANGE_PHI: Final = math.exp(-math.log(2) / 900)
_LOGVOL_PHI: Final = math.exp(-1 / 120)
_LOGVOL_STD: Final = 0.35
_JUMPS_PER_DAY: Final = 1.5
_JUMP_MIN, _JUMP_MEAN = 0.002, 0.004
_AFTERSHOCK: Final = 2.0
_AFTERSHOCK_PHI: Final = math.exp(-1 / 20)
_INTRADAY: Final = 0.6
_SPREAD_WIDENING: Final = 0.3
"""Mean extra spread ticks at volatility factor 1 (grows with its square), at most 9 more."""
_FLOW_BIAS: Final = 0.15
_TRADE_NOTIONAL, _TRADE_SPREAD = 250.0, 1.4
_LEVEL_NOTIONAL, _LEVEL_SPREAD = 20_000.0, 0.7
_LATENCY_MIN_US, _LATENCY_MEAN_US = 300, 700.0
_CHUNK_TRADES: Final = 1_000_000
"""Expected trades per symbol in a generated chunk of time (a day, or less at high rates):
bounds the memory of one chunk."""

_Rows = TypeVar("_Rows", "TradeRows", "BookRows")


@dataclass(frozen=True)
class TradeRows:
    """``trades`` rows as arrays. In a :class:`SymbolChunk`, ``symbol`` is 0 and ``ingest_seq``
    the event's position in the chunk; :func:`merge` numbers them across symbols."""

    symbol: npt.NDArray[np.int16]
    """Index into the symbols given to :func:`merge`."""
    ts: I64
    """Exchange time, µs since the epoch."""
    recv_ts: I64
    price: I64
    """Price units: 10**-PRICE_DECIMALS of the quote currency."""
    lots: I64
    """Size units: 10**-SIZE_DECIMALS of the base currency."""
    buy: npt.NDArray[np.bool_]
    """The taker bought."""
    trade_id: I64
    seq: I64
    ingest_seq: I64


@dataclass(frozen=True)
class BookRows:
    """``book_deltas`` rows as arrays, the rows of one update contiguous (reset, bids, asks);
    ``symbol`` and ``ingest_seq`` as in :class:`TradeRows`."""

    symbol: npt.NDArray[np.int16]
    ts: I64
    recv_ts: I64
    seq: I64
    kind: npt.NDArray[np.int8]
    """Index into :data:`BOOK_KINDS`."""
    side: npt.NDArray[np.int8]
    """Index into :data:`BOOK_SIDES`; -1 on a reset row."""
    price: I64
    """Price units; 0 on a reset row (no level)."""
    lots: I64
    """Absolute new size; 0 deletes the level (and on a reset row)."""
    ingest_seq: I64


@dataclass(frozen=True)
class SymbolChunk:
    """One symbol's events of one chunk of time, in apply order."""

    trades: TradeRows
    book: BookRows
    event_recv: I64
    """``recv_ts`` of every event (book update or trade) in apply order."""


@dataclass
class _Carry:
    """What one chunk leaves to the next."""

    x: float = 0.0
    """Log price relative to the base price."""
    segment: int = -1
    anchor: float = 0.0
    """Level the current range reverts to."""
    bid: int | None = None
    """Best bid and ask, in ticks, of the last book update (None before the first)."""
    ask: int = 0
    trade_id: int = 0
    seq: int = 0


class SymbolModel:
    """One symbol's market for ``seconds`` from ``start_us``: the slow state (regimes,
    volatility, jumps, trade intensity per minute) built at once, the events chunk by chunk."""

    def __init__(
        self, seed: int, symbol: str, start_us: int, seconds: int, trades_per_day: float
    ) -> None:
        if seconds < 1 or trades_per_day <= 0:
            raise ValueError("need at least one second and a positive trade rate")
        digest = hashlib.sha256(f"{seed}/{symbol}".encode()).digest()
        self._entropy = int.from_bytes(digest[:16], "big")
        base = base_price(symbol)
        self._tick = tick_size(base)
        self._base_ticks = (base - base % self._tick) // self._tick
        self.start_us = start_us
        self.seconds = seconds
        self.chunk_seconds = _chunk_seconds(trades_per_day)
        minutes = -(-seconds // 60)
        rng = self._rng(0)

        states, lengths = _regime_segments(rng, minutes)
        self._segment = np.repeat(np.arange(len(states)), lengths)[:minutes]
        self._ranging = states == RANGE
        self.regime: npt.NDArray[np.int8] = states[self._segment].astype(np.int8)
        """The regime of every minute (:data:`RANGE`, :data:`UP` or :data:`DOWN`)."""
        direction = np.where(states == UP, 1.0, np.where(states == DOWN, -1.0, 0.0))
        drift = direction * rng.uniform(*_TREND_DRIFT, len(states)) * _SIGMA_PER_SECOND
        self._drift: F64 = drift[self._segment]

        noise = rng.standard_normal(minutes) * _LOGVOL_STD * math.sqrt(1 - _LOGVOL_PHI**2)
        logvol = _ar1(noise, _LOGVOL_PHI, rng.standard_normal() * _LOGVOL_STD)
        jumps = rng.poisson(_JUMPS_PER_DAY * seconds / DAY_SECONDS)
        self._jump_s = np.sort(rng.integers(0, seconds, jumps))
        sign = np.where(rng.random(jumps) < 0.5, -1.0, 1.0)
        self._jump_size = sign * (_JUMP_MIN + rng.exponential(_JUMP_MEAN, jumps))
        shocks = np.zeros(minutes)
        np.add.at(shocks, self._jump_s // 60, _AFTERSHOCK)
        aftershock = _ar1(shocks, _AFTERSHOCK_PHI)

        midpoint_s = start_us // _US + np.arange(minutes) * 60 + 30
        intraday = 1 + _INTRADAY * np.cos(2 * np.pi * (midpoint_s % DAY_SECONDS) / DAY_SECONDS)
        self._activity = (
            _REGIME_VOL[states][self._segment]
            * np.exp(logvol - _LOGVOL_STD**2 / 2)
            * (1 + aftershock)
        )
        self._sigma = _SIGMA_PER_SECOND * self._activity * np.sqrt(intraday)
        weight = intraday * self._activity
        self._rate = trades_per_day / DAY_SECONDS * weight / weight.mean()

    def chunks(self) -> Iterator[SymbolChunk]:
        """The events chunk after chunk, each ``chunk_seconds`` long (the last may be shorter)."""
        carry = _Carry()
        for k in range(-(-self.seconds // self.chunk_seconds)):
            yield self._chunk(k, carry)

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))

    def _chunk(self, k: int, carry: _Carry) -> SymbolChunk:
        start = k * self.chunk_seconds
        end = min(start + self.chunk_seconds, self.seconds)
        rng = self._rng(1, k)
        minute = np.arange(start, end) // 60
        returns = self._drift[minute] + self._sigma[minute] * rng.standard_normal(end - start)
        jumped = (self._jump_s >= start) & (self._jump_s < end)
        np.add.at(returns, self._jump_s[jumped] - start, self._jump_size[jumped])
        x = self._walk(returns, self._segment[minute], carry)

        counts = rng.poisson(self._rate[minute])
        n = int(counts.sum())
        offset_us = np.repeat(np.arange(start, end, dtype=np.int64) * _US, counts)
        offset_us += rng.integers(0, _US, n)
        offset_us.sort()
        second = offset_us // _US - start
        ts = self.start_us + offset_us

        # Book updates: one before trade 0, K, 2K, ... of the chunk.
        first = np.arange(0, n, TRADES_PER_BOOK_UPDATE)
        updates = len(first)
        fair = self._base_ticks * np.exp(x[second[first]])
        wide = rng.poisson(_SPREAD_WIDENING * self._activity[minute[second[first]]] ** 2)
        spread = 1 + np.minimum(wide, 9)
        bid = np.maximum(np.floor(fair - spread / 2).astype(np.int64), BOOK_DEPTH)
        ask = bid + spread
        book = self._book_rows(rng, bid, ask, carry)

        # Trades at the touch of the update in force; flow leans toward the coming move.
        update = np.arange(n) // TRADES_PER_BOOK_UPDATE
        last = np.minimum(first + TRADES_PER_BOOK_UPDATE, n) - 1
        ahead = np.sign(x[second[last]] - x[second[first]])
        buy = rng.random(n) < 0.5 + _FLOW_BIAS * ahead[update]
        price = np.where(buy, ask[update], bid[update]) * self._tick
        lots = _lots(rng, price, _TRADE_NOTIONAL, _TRADE_SPREAD)

        # Apply order: update b, then its trades; positions as in the event stream.
        trade_at = np.arange(n) + update + 1
        update_at = np.arange(updates) * (TRADES_PER_BOOK_UPDATE + 1)
        event_ts = np.empty(n + updates, dtype=np.int64)
        event_ts[trade_at] = ts
        event_ts[update_at] = ts[first]
        latency = _LATENCY_MIN_US + rng.exponential(_LATENCY_MEAN_US, n + updates)
        # Capped at the chunk's end so that every symbol's chunk k is received before chunk k+1.
        recv = np.minimum(
            np.maximum.accumulate(event_ts + latency.astype(np.int64)),
            self.start_us + end * _US - 1,
        )
        seq = carry.seq + 1 + np.arange(n + updates)
        trades = TradeRows(
            symbol=np.zeros(n, dtype=np.int16),
            ts=ts,
            recv_ts=recv[trade_at],
            price=price,
            lots=lots,
            buy=buy,
            trade_id=carry.trade_id + 1 + np.arange(n),
            seq=seq[trade_at],
            ingest_seq=trade_at,
        )
        at = update_at[book.ingest_seq]
        book = dataclasses.replace(
            book, ts=event_ts[at], recv_ts=recv[at], seq=seq[at], ingest_seq=at
        )
        carry.trade_id += n
        carry.seq += n + updates
        if updates:
            carry.bid, carry.ask = int(bid[-1]), int(ask[-1])
        return SymbolChunk(trades, book, recv)

    def _walk(self, returns: F64, segment: I64, carry: _Carry) -> F64:
        """Log prices of the chunk's seconds: a trend integrates its returns, a range filters
        them through an AR(1) around its anchor; both continue where the last chunk ended."""
        x = np.empty_like(returns)
        cuts = np.flatnonzero(np.diff(segment)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(returns)], strict=True):
            seg = int(segment[lo])
            if self._ranging[seg]:
                if seg != carry.segment:
                    carry.anchor = carry.x
                x[lo:hi] = carry.anchor + _ar1(returns[lo:hi], _RANGE_PHI, carry.x - carry.anchor)
            else:
                x[lo:hi] = carry.x + np.cumsum(returns[lo:hi])
            carry.segment, carry.x = seg, float(x[hi - 1])
        return x

    def _book_rows(self, rng: np.random.Generator, bid: I64, ask: I64, carry: _Carry) -> BookRows:
        """The rows of each update against the one before (``carry`` across chunks).

        Per update, a mask over ``1 + 4 * BOOK_DEPTH`` candidate rows — the reset, the old
        bids, the new bids, the old asks, the new asks, by depth — picks the rows written. As
        a delta: an old level that is not among the new ones is deleted, a new level that was
        not among the old ones is added, and the best level and one random deeper level are
        resized. When that takes more rows than a snapshot (the book moved by about half its
        depth or more), and for the first update ever, the update is a snapshot: a reset and
        every new level, as a venue's depth channel would send it. ``ingest_seq`` is the index
        of the update (the caller maps it to the event's).
        """
        updates = len(bid)
        depth = np.arange(BOOK_DEPTH)
        old_bid = np.r_[bid[:1] if carry.bid is None else carry.bid, bid[:-1]][:updates]
        old_ask = np.r_[ask[:1] if carry.bid is None else carry.ask, ask[:-1]][:updates]
        resized = (depth == 0) | (depth == rng.integers(1, BOOK_DEPTH, updates)[:, None])
        blocks = [np.zeros((updates, 1), dtype=bool)]
        for shift in ((bid - old_bid)[:, None], (old_ask - ask)[:, None]):
            # A level at depth i of the old side is at depth i + shift of the new one.
            blocks.append((depth + shift < 0) | (depth + shift >= BOOK_DEPTH))
            entered = (depth - shift < 0) | (depth - shift >= BOOK_DEPTH)
            blocks.append(entered | resized)
        mask = np.hstack(blocks)
        snapshot = mask.sum(axis=1) > 1 + 2 * BOOK_DEPTH
        if carry.bid is None and updates:
            snapshot[0] = True
        mask[snapshot] = np.r_[True, np.tile(np.repeat([False, True], BOOK_DEPTH), 2)]
        update, column = np.nonzero(mask)
        block = (column - 1) // BOOK_DEPTH
        level = (column - 1) % BOOK_DEPTH
        best = np.stack([old_bid, bid, old_ask, ask], axis=1)[update, block]
        is_ask = block >= 2
        reset = column == 0
        price = np.where(reset, 0, (best + np.where(is_ask, level, -level)) * self._tick)
        kept = (block % 2 == 1) & ~reset
        sizes = _lots(rng, price, _LEVEL_NOTIONAL * (1 + 0.25 * level), _LEVEL_SPREAD)
        kind = np.where(reset, 0, np.where(snapshot[update], 1, 2)).astype(np.int8)
        rows = len(update)
        unset = np.zeros(rows, dtype=np.int64)
        return BookRows(
            symbol=np.zeros(rows, dtype=np.int16),
            ts=unset,
            recv_ts=unset,
            seq=unset,
            kind=kind,
            side=np.where(reset, -1, is_ask).astype(np.int8),
            price=price,
            lots=np.where(kept, sizes, 0),
            ingest_seq=update,
        )


def _chunk_seconds(trades_per_day: float) -> int:
    """Length of a generated chunk: a day, or whole minutes holding about _CHUNK_TRADES."""
    if trades_per_day <= _CHUNK_TRADES:
        return DAY_SECONDS
    return max(60, int(DAY_SECONDS * _CHUNK_TRADES / trades_per_day) // 60 * 60)


def merge(chunks: Sequence[SymbolChunk], first_ingest_seq: int) -> tuple[TradeRows, BookRows]:
    """Every symbol's rows of the same chunk of time, each table in ingest order.

    Events are applied in the order they were received (ties go to the symbol listed first)
    and numbered from ``first_ingest_seq``; ``symbol`` becomes the index into ``chunks``.
    """
    sizes = [len(c.event_recv) for c in chunks]
    offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    order = np.argsort(np.concatenate([c.event_recv for c in chunks]), kind="stable")
    ingest = np.empty(len(order), dtype=np.int64)
    ingest[order] = np.arange(first_ingest_seq, first_ingest_seq + len(order))

    def numbered(rows: _Rows, k: int) -> _Rows:
        return dataclasses.replace(
            rows,
            symbol=np.full(len(rows.ts), k, dtype=np.int16),
            ingest_seq=ingest[offsets[k] + rows.ingest_seq],
        )

    trades = _concat([numbered(c.trades, k) for k, c in enumerate(chunks)])
    book = _concat([numbered(c.book, k) for k, c in enumerate(chunks)])
    return _in_ingest_order(trades), _in_ingest_order(book)


def _in_ingest_order(rows: _Rows) -> _Rows:
    """Stable, so the rows of one book update keep their order."""
    if len(rows.ingest_seq) < 2 or bool(np.all(rows.ingest_seq[1:] >= rows.ingest_seq[:-1])):
        return rows
    order = np.argsort(rows.ingest_seq, kind="stable")
    return type(rows)(*(getattr(rows, f.name)[order] for f in dataclasses.fields(rows)))


def _concat(parts: Sequence[_Rows]) -> _Rows:
    cls = type(parts[0])
    fields = dataclasses.fields(cls)
    return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields))


def _regime_segments(rng: np.random.Generator, minutes: int) -> tuple[I64, I64]:
    """States and lengths (whole minutes) of regime segments covering at least ``minutes``."""
    states: list[int] = []
    lengths: list[int] = []
    state = int(rng.integers(3))
    covered = 0
    while covered < minutes:
        length = 1 + int(rng.exponential(_REGIME_MINUTES[state]))
        states.append(state)
        lengths.append(length)
        covered += length
        state = int(rng.choice(3, p=_REGIME_NEXT[state]))
    return np.array(states, dtype=np.int64), np.array(lengths, dtype=np.int64)


def _ar1(x: F64, phi: float, state: float = 0.0) -> F64:
    """``y[t] = phi * y[t-1] + x[t]`` from ``y[-1] = state``, without a Python loop per step.

    Within a block, ``y[t0+k] = phi**k * (phi * y[t0-1] + sum(x[t0+i] / phi**i, i <= k))``: a
    cumulative sum. Blocks stop before ``1 / phi**i`` reaches 1e6, so the sum keeps ~10
    significant digits of every term while the loop runs once per block, not per step.
    """
    block = max(1, int(math.log(1e6) / -math.log(phi)))
    powers = phi ** np.arange(min(block, len(x)))
    y = np.empty_like(x)
    for lo in range(0, len(x), block):
        hi = min(lo + block, len(x))
        p = powers[: hi - lo]
        y[lo:hi] = p * (phi * state + np.cumsum(x[lo:hi] / p))
        state = float(y[hi - 1])
    return y


def _lots(
    rng: np.random.Generator, price: I64, notional: float | npt.NDArray[np.floating], spread: float
) -> I64:
    """Log-normal sizes of median ``notional`` (quote currency) at ``price`` units, ≥ 1 lot."""
    value = notional * np.exp(spread * rng.standard_normal(len(price)))
    base = value / np.maximum(price, 1) * 10**PRICE_DECIMALS
    return np.maximum(np.rint(base * 10**SIZE_DECIMALS), 1).astype(np.int64)
