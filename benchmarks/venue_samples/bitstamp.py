"""Bitstamp ``diff_order_book_btcusd`` traffic for the venue benchmark: a REST book, then diffs.

The book is BTC/USD on Bitstamp's 1-dollar tick with 8-decimal amounts. The REST snapshot
(``rest_snapshot``) is the full book, here 1000 levels a side; each diff changes 1-3 levels
(resizes, new levels that never cross, deletes) and carries a ``microtimestamp`` later than
the snapshot's and the previous diff's, so every diff is applied in order after it.
"""

from __future__ import annotations

import json
import random
from typing import Any

from ._shared.book_walk import BookWalk, fixed

VENUE = "bitstamp"
SYMBOL = "btcusd"
SNAPSHOT_MICROS = 1_643_643_584_684_047
_MID = 30_000  # dollars
_LEVELS = 1000


def _size(rng: random.Random) -> str:
    return fixed(rng.randint(1, 400_000_000), 8)


def _level(dollars: int, size: str) -> list[str]:
    return [str(dollars), size]


def _walk(rng: random.Random) -> BookWalk[str]:
    return BookWalk(rng, _size, "0.00000000", mid=_MID, levels=_LEVELS, floor=_LEVELS - 50)


def rest_snapshot() -> bytes:
    walk = _walk(random.Random(7))
    bids, asks = walk.split(walk.levels(), _level)
    body = {
        "timestamp": str(SNAPSHOT_MICROS // 1_000_000),
        "microtimestamp": str(SNAPSHOT_MICROS),
        "bids": bids,
        "asks": asks,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    walk = _walk(rng)
    setup = [b'{"event":"bts:subscription_succeeded","channel":"diff_order_book_btcusd","data":{}}']
    deltas: list[bytes] = []
    micros = SNAPSHOT_MICROS
    for _ in range(n):
        bids, asks = walk.split(walk.step(), _level)
        micros += rng.randint(200, 90_000)
        data = {
            "timestamp": str(micros // 1_000_000),
            "microtimestamp": str(micros),
            "bids": bids,
            "asks": asks,
        }
        deltas.append(
            json.dumps(
                {"data": data, "channel": "diff_order_book_btcusd", "event": "data"},
                separators=(",", ":"),
            ).encode()
        )
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    return message["data"]["bids"], message["data"]["asks"]
