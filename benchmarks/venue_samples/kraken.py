"""Kraken v2 ``book`` traffic (depth 25) for the venue benchmark: instrument data, a snapshot,
then updates carrying the checksum Kraken would send.

The updates walk a BTC/USD book on the 0.1 tick (price precision 1, qty precision 8): each
changes 1-3 levels — resizes, new levels inside the 25 (the worst one then leaves silently,
as on Kraken) and deletes (Kraken then sends the level that moves up into the 25th place in
the same message). Prices and quantities are JSON numbers in their shortest spelling, as
Kraken sends them (``30000.0``, ``0.5``). Each checksum is computed here from a plain dict
book with ``Decimal`` formatting, independently of the venue class.
"""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal
from typing import Any

VENUE = "kraken"
SYMBOL = "BTC/USD"
_DEPTH = 25
_MID = 300_000  # ticks of 0.1: 30000.0
_TS = "2023-10-06T17:35:55.440295Z"


def _price(ticks: int) -> float:
    return ticks / 10


def _qty(rng: random.Random) -> float:
    return rng.randint(1, 4_000_000_000) / 100_000_000


def _text(value: float, decimals: int) -> str:
    return f"{Decimal(repr(value)):.{decimals}f}".replace(".", "").lstrip("0")


def _checksum(bids: dict[int, float], asks: dict[int, float]) -> int:
    parts = [_text(_price(t), 1) + _text(asks[t], 8) for t in sorted(asks)[:10]] + [
        _text(_price(t), 1) + _text(bids[t], 8) for t in sorted(bids, reverse=True)[:10]
    ]
    return zlib.crc32("".join(parts).encode())


def _book_message(
    kind: str, bids: list[tuple[int, float]], asks: list[tuple[int, float]], checksum: int
) -> bytes:
    data = {
        "symbol": SYMBOL,
        "bids": [{"price": _price(t), "qty": q} for t, q in bids],
        "asks": [{"price": _price(t), "qty": q} for t, q in asks],
        "checksum": checksum,
        "timestamp": _TS,
    }
    return json.dumps(
        {"channel": "book", "type": kind, "data": [data]}, separators=(",", ":")
    ).encode()


def _instrument() -> bytes:
    pair = {
        "symbol": SYMBOL,
        "base": "BTC",
        "quote": "USD",
        "status": "online",
        "qty_precision": 8,
        "qty_increment": 1e-08,
        "price_precision": 1,
        "cost_precision": 5,
        "marginable": True,
        "has_index": True,
        "cost_min": 0.5,
        "tick_size": 0.1,
        "price_increment": 0.1,
        "qty_min": 0.0001,
    }
    body = {"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": [pair]}}
    return json.dumps(body, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bids = {_MID - 1 - 2 * i: _qty(rng) for i in range(_DEPTH)}
    asks = {_MID + 1 + 2 * i: _qty(rng) for i in range(_DEPTH)}
    setup = [
        _instrument(),
        _book_message(
            "snapshot",
            sorted(bids.items(), reverse=True),
            sorted(asks.items()),
            _checksum(bids, asks),
        ),
    ]
    deltas: list[bytes] = []
    for _ in range(n):
        changes: dict[str, list[tuple[int, float]]] = {"b": [], "a": []}
        for _ in range(rng.randint(1, 3)):
            side = rng.choice("ba")
            levels = bids if side == "b" else asks
            roll = rng.random()
            if roll < 0.25:
                ticks = rng.choice(list(levels))
                del levels[ticks]
                changes[side].append((ticks, 0.0))
                continue
            if roll < 0.5:  # a new level inside the 25, never crossing the other side
                best = max(bids) if side == "b" else min(asks)
                worst = min(levels) if side == "b" else max(levels)
                ticks = rng.randint(min(best, worst), max(best, worst))
            else:
                ticks = rng.choice(list(levels))
            levels[ticks] = _qty(rng)
            changes[side].append((ticks, levels[ticks]))
        for side, levels, sign in (("b", bids, -1), ("a", asks, 1)):
            while len(levels) > _DEPTH:  # the worst level leaves without a message
                del levels[min(levels) if side == "b" else max(levels)]
            while len(levels) < _DEPTH:  # Kraken sends the level moving up into the 25th place
                worst = min(levels) if side == "b" else max(levels)
                ticks = worst + sign * rng.randint(1, 3)
                levels[ticks] = _qty(rng)
                changes[side].append((ticks, levels[ticks]))
        deltas.append(_book_message("update", changes["b"], changes["a"], _checksum(bids, asks)))
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    data = message["data"][0]
    return (
        [[str(level["price"]), str(level["qty"])] for level in data["bids"]],
        [[str(level["price"]), str(level["qty"])] for level in data["asks"]],
    )
