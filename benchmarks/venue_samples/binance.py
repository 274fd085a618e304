"""Binance Spot ``depth@100ms`` traffic for the venue benchmark: a REST book, then diffs.

The book is BTCUSDT on its 0.01 tick with 8-decimal wire strings as Binance formats them
(``"30000.01000000"``). The REST snapshot (``rest_snapshot``) holds 1000 levels a side, as
``GET /api/v3/depth?limit=1000`` does; each diff, combined-stream wrapped, changes 1-3
levels (resizes, new levels that never cross, deletes) and chains ``U`` to the previous
``u + 1``, so every diff is valid in sequence after the snapshot.
"""

from __future__ import annotations

import json
import random
from typing import Any

from ._shared.book_walk import BookWalk, fixed

VENUE = "binance"
SYMBOL = "BTCUSDT"
LAST_UPDATE_ID = 48_573_913_420
_MID = 3_000_000  # ticks of 0.01: 30000.00
_LEVELS = 1000


def _price(ticks: int) -> str:
    return fixed(ticks, 2) + "000000"


def _size(rng: random.Random) -> str:
    return fixed(rng.randint(1, 400_000), 5) + "000"  # 0.00001 BTC lot step


def _level(ticks: int, size: str) -> list[str]:
    return [_price(ticks), size]


def _walk(rng: random.Random) -> BookWalk[str]:
    return BookWalk(rng, _size, "0.00000000", mid=_MID, levels=_LEVELS, floor=_LEVELS - 50)


def rest_snapshot() -> bytes:
    walk = _walk(random.Random(7))
    bids, asks = walk.split(walk.levels(), _level)
    body = {"lastUpdateId": LAST_UPDATE_ID, "bids": bids, "asks": asks}
    return json.dumps(body, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    walk = _walk(rng)
    setup = [b'{"result":null,"id":1}']
    deltas: list[bytes] = []
    last = LAST_UPDATE_ID
    for i in range(n):
        bids, asks = walk.split(walk.step(), _level)
        first, last = last + 1, last + rng.randint(1, 4)  # one event may batch several ids
        event = {
            "e": "depthUpdate",
            "E": 1672515782136 + 100 * i,
            "s": SYMBOL,
            "U": first,
            "u": last,
            "b": bids,
            "a": asks,
        }
        deltas.append(
            json.dumps(
                {"stream": "btcusdt@depth@100ms", "data": event}, separators=(",", ":")
            ).encode()
        )
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    return message["data"]["b"], message["data"]["a"]
