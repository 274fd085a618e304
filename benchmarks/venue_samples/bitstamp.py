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

VENUE = "bitstamp"
SYMBOL = "btcusd"
SNAPSHOT_MICROS = 1_643_643_584_684_047
_MID = 30_000  # dollars
_LEVELS = 1000


def _price(dollars: int) -> str:
    return str(dollars)


def _size(rng: random.Random) -> str:
    sats = rng.randint(1, 400_000_000)
    return f"{sats // 100_000_000}.{sats % 100_000_000:08d}"


def _book(rng: random.Random) -> tuple[dict[int, str], dict[int, str]]:
    bids = {_MID - 1 - 2 * i: _size(rng) for i in range(_LEVELS)}
    asks = {_MID + 1 + 2 * i: _size(rng) for i in range(_LEVELS)}
    return bids, asks


def rest_snapshot() -> bytes:
    bids, asks = _book(random.Random(7))
    return json.dumps(
        {
            "timestamp": str(SNAPSHOT_MICROS // 1_000_000),
            "microtimestamp": str(SNAPSHOT_MICROS),
            "bids": [[_price(p), bids[p]] for p in sorted(bids, reverse=True)],
            "asks": [[_price(p), asks[p]] for p in sorted(asks)],
        },
        separators=(",", ":"),
    ).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bids, asks = _book(rng)
    setup = [b'{"event":"bts:subscription_succeeded","channel":"diff_order_book_btcusd","data":{}}']
    deltas: list[bytes] = []
    micros = SNAPSHOT_MICROS
    for _ in range(n):
        changes: dict[str, list[list[str]]] = {"bids": [], "asks": []}
        touched: set[int] = set()
        for _ in range(rng.randint(1, 3)):
            side = rng.choice(("bids", "asks"))
            levels = bids if side == "bids" else asks
            roll = rng.random()
            if roll < 0.25 and len(levels) > _LEVELS - 50:
                price = rng.choice(list(levels))
                size = "0.00000000"
            elif roll < 0.5:  # a new level near the top, never crossing the other side
                offset = rng.randint(0, 60)
                price = max(bids) - offset if side == "bids" else min(asks) + offset
                size = _size(rng)
            else:
                price = rng.choice(list(levels))
                size = _size(rng)
            if price in touched:
                continue
            touched.add(price)
            changes[side].append([_price(price), size])
            if size == "0.00000000":
                del levels[price]
            else:
                levels[price] = size
        micros += rng.randint(200, 90_000)
        data = {"timestamp": str(micros // 1_000_000), "microtimestamp": str(micros), **changes}
        deltas.append(
            json.dumps(
                {"data": data, "channel": "diff_order_book_btcusd", "event": "data"},
                separators=(",", ":"),
            ).encode()
        )
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    return message["data"]["bids"], message["data"]["asks"]
