"""Gemini v2 ``l2`` traffic for the venue benchmark: the full first book, then updates.

The setup is the subscription's first ``l2_updates`` (the whole book plus recent trades); the
updates walk a 0.01-tick BTCUSD book, each changing 1-3 levels (resizes, new levels that never
cross the other side, deletes of existing levels), so every one is valid in sequence.
"""

from __future__ import annotations

import json
import random
from typing import Any

VENUE = "gemini"
SYMBOL = "BTCUSD"
_MID = 912_205  # ticks of 0.01: 9122.05


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def _size(rng: random.Random) -> str:
    units = rng.randint(1, 400_000_000)  # 8 decimals, as Gemini sends BTC quantities
    return f"{units // 100_000_000}.{units % 100_000_000:08d}"


def _message(changes: list[list[str]], **extra: Any) -> bytes:
    body = {"type": "l2_updates", "symbol": SYMBOL, "changes": changes, **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(11)
    bids = {_MID - 1 - 3 * i: _size(rng) for i in range(200)}
    asks = {_MID + 1 + 3 * i: _size(rng) for i in range(200)}
    trade = {
        "type": "trade",
        "symbol": SYMBOL,
        "event_id": 169841458,
        "timestamp": 1560976400428,
        "price": _price(_MID - 1),
        "quantity": "0.0073173",
        "side": "sell",
        "tid": 2840140800042677,
    }
    setup = [
        _message(
            [["buy", _price(t), s] for t, s in sorted(bids.items(), reverse=True)]
            + [["sell", _price(t), s] for t, s in sorted(asks.items())],
            trades=[trade],
            auction_events=[],
        )
    ]
    updates: list[bytes] = []
    for _ in range(n):
        changes: list[list[str]] = []
        touched: set[int] = set()
        for _ in range(rng.randint(1, 3)):
            side = rng.choice(("buy", "sell"))
            levels = bids if side == "buy" else asks
            roll = rng.random()
            if roll < 0.25 and len(levels) > 150:
                ticks = rng.choice(list(levels))
                size = "0"
            elif roll < 0.5:  # a new level near the top, never crossing the other side
                offset = rng.randint(0, 90)
                ticks = max(bids) - offset if side == "buy" else min(asks) + offset
                size = _size(rng)
            else:
                ticks = rng.choice(list(levels))
                size = _size(rng)
            if ticks in touched:
                continue
            touched.add(ticks)
            changes.append([side, _price(ticks), size])
            if size == "0":
                del levels[ticks]
            else:
                levels[ticks] = size
        updates.append(_message(changes))
    return setup, updates


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    bids = [[p, q] for side, p, q in message["changes"] if side == "buy"]
    asks = [[p, q] for side, p, q in message["changes"] if side == "sell"]
    return bids, asks
