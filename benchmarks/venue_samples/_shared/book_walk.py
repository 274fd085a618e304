"""The random walk behind every venue sample's book deltas, shared so that each venue module
keeps only what differs: its wire spelling of prices and sizes and its message envelopes.

This folder has no ``__init__.py`` on purpose: ``bench_venues.py`` takes every module that
``pkgutil`` lists in ``venue_samples`` for a venue sample, and ``pkgutil`` does not list
namespace folders.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Generic, TypeVar

S = TypeVar("S")  # a size as the venue spells it: text, or a float for Kraken's JSON numbers
T = TypeVar("T")


def fixed(units: int, places: int) -> str:
    """``units`` of ``10**-places`` as fixed-point text: ``fixed(3_000_001, 2) == "30000.01"``."""
    whole, fraction = divmod(units, 10**places)
    return f"{whole}.{fraction:0{places}d}"


class BookWalk(Generic[S]):
    """A book in integer ticks and the walk its deltas follow.

    It starts with ``levels`` a side, ``spacing`` ticks apart from one tick either side of
    ``mid``. Each ``step`` changes 1-3 levels: with probability ``deletes`` it removes one (while
    the side holds more than ``floor``), with ``adds`` it sets one at most ``reach`` ticks behind
    the best, so never crossing (``None``, or a side already at ``depth``: not past its worst
    either, so it stays in the book), and otherwise it resizes one; a price already changed in
    the message is skipped. With ``depth``, the levels beyond it leave after the message, as the
    venue truncates: silently, or with a ``zero`` size in the message when ``announce`` is set.
    """

    def __init__(
        self,
        rng: random.Random,
        size: Callable[[random.Random], S],
        zero: S,
        *,
        mid: int,
        levels: int,
        floor: int,
        spacing: int = 2,
        reach: int | None = 60,
        deletes: float = 0.25,
        adds: float = 0.25,
        depth: int | None = None,
        announce: bool = False,
        sides: tuple[str, str] = ("b", "a"),
    ) -> None:
        self._rng = rng
        self._zero = zero
        self._sides = sides
        self._size = size
        self._floor = floor
        self._reach = reach
        self._deletes = deletes
        self._adds = deletes + adds
        self._depth = depth
        self._announce = announce
        self.bids: dict[int, S] = {mid - 1 - spacing * i: size(rng) for i in range(levels)}
        self.asks: dict[int, S] = {mid + 1 + spacing * i: size(rng) for i in range(levels)}

    def levels(self) -> list[tuple[str, int, S]]:
        """The whole book as ``(side, ticks, size)``: bids best first, then asks best first."""
        bid, ask = self._sides
        return [(bid, t, s) for t, s in sorted(self.bids.items(), reverse=True)] + [
            (ask, t, s) for t, s in sorted(self.asks.items())
        ]

    def split(
        self, changes: list[tuple[str, int, S]], level: Callable[[int, S], T]
    ) -> tuple[list[T], list[T]]:
        """``changes`` (or ``levels()``) as the venue's bid and ask entries, in order."""
        bid = self._sides[0]
        return (
            [level(t, s) for side, t, s in changes if side == bid],
            [level(t, s) for side, t, s in changes if side != bid],
        )

    def step(self) -> list[tuple[str, int, S]]:
        """One message's changes as ``(side, ticks, size)``, already applied to the book."""
        rng = self._rng
        changes: list[tuple[str, int, S]] = []
        touched: set[tuple[str, int]] = set()
        for _ in range(rng.randint(1, 3)):
            side = rng.choice(self._sides)
            is_bid = side == self._sides[0]
            levels = self.bids if is_bid else self.asks
            roll = rng.random()
            delete = roll < self._deletes and len(levels) > self._floor
            if delete:
                ticks = rng.choice(list(levels))
            elif roll < self._adds:
                best = max(levels) if is_bid else min(levels)
                reach = self._reach
                if reach is None or (self._depth is not None and len(levels) >= self._depth):
                    span = best - min(levels) if is_bid else max(levels) - best
                    reach = span if reach is None else min(reach, span)
                offset = rng.randint(0, reach)
                ticks = best - offset if is_bid else best + offset
            else:
                ticks = rng.choice(list(levels))
            if (side, ticks) in touched:
                continue
            touched.add((side, ticks))
            if delete:
                del levels[ticks]
                changes.append((side, ticks, self._zero))
            else:
                size = levels[ticks] = self._size(rng)
                changes.append((side, ticks, size))
        if self._depth is not None:
            for side, levels in zip(self._sides, (self.bids, self.asks), strict=True):
                while len(levels) > self._depth:
                    worst = min(levels) if levels is self.bids else max(levels)
                    del levels[worst]
                    if self._announce:
                        changes.append((side, worst, self._zero))
        return changes
