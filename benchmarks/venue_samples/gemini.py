"""Gemini v2 ``l2`` traffic for the venue benchmark: the full first book, then updates.

The setup is the subscription's first ``l2_updates`` (the whole book plus recent trades); the
updates walk a 0.01-tick BTCUSD book, each changing 1-3 levels (resizes, new levels that never
cross the other side, deletes of existing levels), so every one is valid in sequence.
"""

from __future__ import annotations

import json
import random
from typing import Any

from ._shared.book_walk import BookWalk, fixed

VENUE = "gemini"
SYMBOL = "BTCUSD"
_MID = 912_205  # ticks of 0.01: 9122.05


def _change(side: str, ticks: int, size: str) -> list[str]:
    return [side, fixed(ticks, 2), size]


def _size(rng: random.Random) -> str:
    return fixed(rng.randint(1, 400_000_000), 8)  # 8 decimals, as Gemini sends BTC quantities


def _message(changes: list[list[str]], **extra: Any) -> bytes:
    body = {"type": "l2_updates", "symbol": SYMBOL, "changes": changes, **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    walk = BookWalk(
        random.Random(11),
        _size,
        "0",
        mid=_MID,
        levels=200,
        floor=150,
        spacing=3,
        reach=90,
        sides=("buy", "sell"),
    )
    trade = {
        "type": "trade",
        "symbol": SYMBOL,
        "event_id": 169841458,
        "timestamp": 1560976400428,
        "price": fixed(_MID - 1, 2),
        "quantity": "0.0073173",
        "side": "sell",
        "tid": 2840140800042677,
    }
    book = [_change(*level) for level in walk.levels()]
    setup = [_message(book, trades=[trade], auction_events=[])]
    updates = [_message([_change(*change) for change in walk.step()]) for _ in range(n)]
    return setup, updates


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    bids = [[p, q] for side, p, q in message["changes"] if side == "buy"]
    asks = [[p, q] for side, p, q in message["changes"] if side == "sell"]
    return bids, asks
