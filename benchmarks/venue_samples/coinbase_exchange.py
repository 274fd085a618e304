"""Coinbase Exchange ``level2_batch`` traffic for the venue benchmark: snapshot, l2updates.

A 0.01-tick BTC-USD book of 200 levels per side. Each ``l2update`` changes 1-3 levels —
resizes, new levels near the touch, deletes — as ``[side, price, size]`` with ``side``
``buy``/``sell`` and the microsecond ``time`` the feed sends; the stream has no sequence
numbers, so every update is valid after the snapshot.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

VENUE = "coinbase-exchange"
SYMBOL = "BTC-USD"
_MID = 6_892_300  # ticks of 0.01: 68923.00
_LEVELS = 200
_T0 = 1_775_521_738  # 2026-04-07T00:28:58Z


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def _size(rng: random.Random) -> str:
    units = rng.randint(1, 400_000_000)
    return f"{units // 10**8}.{units % 10**8:08d}"


def _time(i: int) -> str:
    seconds, micros = divmod(i * 3_712, 10**6)  # ~270 messages per second
    whole = datetime.fromtimestamp(_T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{micros:06d}Z"


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bids = {_MID - 1 - 2 * i: _size(rng) for i in range(_LEVELS)}
    asks = {_MID + 1 + 2 * i: _size(rng) for i in range(_LEVELS)}
    setup = [
        _encode(
            {
                "type": "subscriptions",
                "channels": [{"name": "level2_batch", "product_ids": [SYMBOL]}],
            }
        ),
        _encode(
            {
                "type": "snapshot",
                "product_id": SYMBOL,
                "bids": [[_price(t), bids[t]] for t in sorted(bids, reverse=True)],
                "asks": [[_price(t), asks[t]] for t in sorted(asks)],
            }
        ),
    ]
    deltas: list[bytes] = []
    for i in range(1, n + 1):
        changes: list[list[str]] = []
        touched: set[tuple[str, int]] = set()
        for _ in range(rng.randint(1, 3)):
            side = rng.choice(("buy", "sell"))
            levels = bids if side == "buy" else asks
            roll = rng.random()
            if roll < 0.3 and len(levels) > _LEVELS - 20:
                ticks = rng.choice(list(levels))
                size = "0"
            elif roll < 0.55:  # a new level near the touch, never crossing the other side
                offset = rng.randint(0, 40)
                ticks = max(bids) - offset if side == "buy" else min(asks) + offset
                size = _size(rng)
            else:
                ticks = rng.choice(list(levels))
                size = _size(rng)
            if (side, ticks) in touched:
                continue
            touched.add((side, ticks))
            changes.append([side, _price(ticks), size])
            if size == "0":
                levels.pop(ticks, None)
            else:
                levels[ticks] = size
        deltas.append(
            _encode(
                {"type": "l2update", "product_id": SYMBOL, "time": _time(i), "changes": changes}
            )
        )
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    bids = [[price, size] for side, price, size in message["changes"] if side == "buy"]
    asks = [[price, size] for side, price, size in message["changes"] if side == "sell"]
    return bids, asks
