"""Bybit spot ``orderbook.50`` traffic for the venue benchmark: one snapshot, then deltas.

The deltas walk a 0.01-tick BTCUSDT book (the spot tick size): each changes 1-3 levels —
resizes, new levels inside the window and deletes of existing ones — with ``u`` advancing by
one per message, exactly as the live stream does, so every delta is valid after the setup.
"""

from __future__ import annotations

import json
import random
from typing import Any

VENUE = "bybit"
SYMBOL = "BTCUSDT"
_MID = 3_000_000  # ticks of 0.01: 30000.00


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def _size(rng: random.Random) -> str:
    milli = rng.randint(1, 40_000)
    return f"{milli // 1000}.{milli % 1000:03d}"


def _message(kind: str, u: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    ts = 1687940967466 + u
    return json.dumps(
        {
            "topic": f"orderbook.50.{SYMBOL}",
            "type": kind,
            "ts": ts,
            "data": {"s": SYMBOL, "b": bids, "a": asks, "u": u, "seq": 66544703342 + u},
            "cts": ts - 2,
        },
        separators=(",", ":"),
    ).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bids = {_MID - 1 - 2 * i: _size(rng) for i in range(50)}
    asks = {_MID + 1 + 2 * i: _size(rng) for i in range(50)}
    setup = [
        _message(
            "snapshot",
            1,
            [[_price(t), bids[t]] for t in sorted(bids, reverse=True)],
            [[_price(t), asks[t]] for t in sorted(asks)],
        )
    ]
    deltas: list[bytes] = []
    for u in range(2, n + 2):
        changes: dict[str, list[list[str]]] = {"b": [], "a": []}
        touched: set[int] = set()
        for _ in range(rng.randint(1, 3)):
            side = rng.choice("ba")
            levels = bids if side == "b" else asks
            roll = rng.random()
            if roll < 0.25 and len(levels) > 40:
                ticks = rng.choice(list(levels))
                size = "0"
            elif roll < 0.5:  # a new level inside the window, never crossing the other side
                offset = rng.randint(0, 60)
                ticks = max(bids) - offset if side == "b" else min(asks) + offset
                size = _size(rng)
            else:
                ticks = rng.choice(list(levels))
                size = _size(rng)
            if ticks in touched:
                continue
            touched.add(ticks)
            changes[side].append([_price(ticks), size])
            if size == "0":
                del levels[ticks]
            else:
                levels[ticks] = size
            if len(levels) > 50:  # the worst level leaves the 50-level window
                worst = min(levels) if side == "b" else max(levels)
                del levels[worst]
                touched.add(worst)
                changes[side].append([_price(worst), "0"])
        deltas.append(_message("delta", u, changes["b"], changes["a"]))
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    return message["data"]["b"], message["data"]["a"]
