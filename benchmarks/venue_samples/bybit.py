"""Bybit spot ``orderbook.50`` traffic for the venue benchmark: one snapshot, then deltas.

The deltas walk a 0.01-tick BTCUSDT book (the spot tick size): each changes 1-3 levels —
resizes, new levels inside the window and deletes of existing ones — with ``u`` advancing by
one per message, exactly as the live stream does, so every delta is valid after the setup.
"""

from __future__ import annotations

import json
import random
from typing import Any

from ._shared.book_walk import BookWalk, fixed

VENUE = "bybit"
SYMBOL = "BTCUSDT"
_MID = 3_000_000  # ticks of 0.01: 30000.00
_DEPTH = 50


def _size(rng: random.Random) -> str:
    return fixed(rng.randint(1, 40_000), 3)


def _level(ticks: int, size: str) -> list[str]:
    return [fixed(ticks, 2), size]


def _message(kind: str, u: int, levels: tuple[list[list[str]], list[list[str]]]) -> bytes:
    ts = 1687940967466 + u
    bids, asks = levels
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
    # the worst level leaving the 50-level window is sent as a delete
    walk = BookWalk(
        random.Random(7), _size, "0", mid=_MID, levels=_DEPTH, floor=40, depth=_DEPTH, announce=True
    )
    setup = [_message("snapshot", 1, walk.split(walk.levels(), _level))]
    deltas = [_message("delta", u, walk.split(walk.step(), _level)) for u in range(2, n + 2)]
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    return message["data"]["b"], message["data"]["a"]
