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

VENUE = "binance"
SYMBOL = "BTCUSDT"
LAST_UPDATE_ID = 48_573_913_420
_MID = 3_000_000  # ticks of 0.01: 30000.00
_LEVELS = 1000


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def _size(rng: random.Random) -> str:
    steps = rng.randint(1, 400_000)  # 0.00001 BTC lot step
    return f"{steps // 100_000}.{steps % 100_000:05d}000"


def _book(rng: random.Random) -> tuple[dict[int, str], dict[int, str]]:
    bids = {_MID - 1 - 2 * i: _size(rng) for i in range(_LEVELS)}
    asks = {_MID + 1 + 2 * i: _size(rng) for i in range(_LEVELS)}
    return bids, asks


def rest_snapshot() -> bytes:
    bids, asks = _book(random.Random(7))
    return json.dumps(
        {
            "lastUpdateId": LAST_UPDATE_ID,
            "bids": [[_price(t), bids[t]] for t in sorted(bids, reverse=True)],
            "asks": [[_price(t), asks[t]] for t in sorted(asks)],
        },
        separators=(",", ":"),
    ).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bids, asks = _book(rng)
    setup = [b'{"result":null,"id":1}']
    deltas: list[bytes] = []
    last = LAST_UPDATE_ID
    for i in range(n):
        changes: dict[str, list[list[str]]] = {"b": [], "a": []}
        touched: set[int] = set()
        for _ in range(rng.randint(1, 3)):
            side = rng.choice("ba")
            levels = bids if side == "b" else asks
            roll = rng.random()
            if roll < 0.25 and len(levels) > _LEVELS - 50:
                ticks = rng.choice(list(levels))
                size = "0.00000000"
            elif roll < 0.5:  # a new level near the top, never crossing the other side
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
            if size == "0.00000000":
                del levels[ticks]
            else:
                levels[ticks] = size
        first, last = last + 1, last + rng.randint(1, 4)  # one event may batch several ids
        event = {
            "e": "depthUpdate",
            "E": 1672515782136 + 100 * i,
            "s": SYMBOL,
            "U": first,
            "u": last,
            "b": changes["b"],
            "a": changes["a"],
        }
        deltas.append(
            json.dumps(
                {"stream": "btcusdt@depth@100ms", "data": event}, separators=(",", ":")
            ).encode()
        )
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    return message["data"]["b"], message["data"]["a"]
